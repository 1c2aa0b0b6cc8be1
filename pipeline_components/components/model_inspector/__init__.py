"""ModelInspector: inspect the candidate SavedModel and check its serving contract (a gate before the push)."""

from __future__ import annotations

from pipeline_components.components.model_inspector.component import ModelInspector

__all__ = ["ModelInspector"]
