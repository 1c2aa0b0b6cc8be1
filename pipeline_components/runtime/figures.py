"""Old path of ``runtime/node_figures.py`` (a node's figures) and ``components/gate.py`` (a gate's verdict).

Kept so that modules not yet moved to the new paths keep importing; new code imports from the new ones.
"""

from __future__ import annotations

from pipeline_components.components.gate import GATE_FILE, write_gate
from pipeline_components.components.gate import read_gate as gate_figures
from pipeline_components.runtime.node_figures import node_figures

__all__ = ["GATE_FILE", "gate_figures", "node_figures", "write_gate"]
