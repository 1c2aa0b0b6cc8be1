"""SavedModel inspection (what ``saved_model_cli show --all`` shows, and more) and the serving contract."""

from __future__ import annotations

from pipeline_components.inspection.contract import (
    Difference,
    check_declared,
    compare_signatures,
    served_version_dir,
)
from pipeline_components.inspection.render import to_html, to_markdown
from pipeline_components.inspection.saved_model import inspect_saved_model, serving_signatures

__all__ = [
    "Difference",
    "check_declared",
    "compare_signatures",
    "inspect_saved_model",
    "served_version_dir",
    "serving_signatures",
    "to_html",
    "to_markdown",
]
