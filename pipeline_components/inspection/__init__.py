"""Old path of ``components/model_inspector/`` (SavedModel inspection and the serving contract live with the node).

Kept so that modules not yet moved to the new path keep importing, and ``python -m pipeline_components.inspection``
keeps working for the runway CLI until it calls ``pipeline_components.components.model_inspector``; new code
imports from the new path.
"""

from __future__ import annotations

from pipeline_components.components import model_inspector


def __getattr__(name: str) -> object:
    return getattr(model_inspector, name)
