"""Monitoring of served traffic (runtime side, TFDV): skew against the training statistics of the version that
answered, drift against the previous window, the distribution of the answers (docs/monitoring.md).

One entry point for a DAG task: ``python -m pipeline_components.monitoring --pipeline NAME --log-prefix PREFIX
--since T --until T --out DIR [--previous DIR]`` (``__main__.py``), or ``monitor_window`` in-process.
"""

from __future__ import annotations

from pipeline_components.monitoring.served import Window
from pipeline_components.monitoring.training import SpanStatistics, training_statistics
from pipeline_components.monitoring.window import monitor_window

__all__ = ["SpanStatistics", "Window", "monitor_window", "training_statistics"]
