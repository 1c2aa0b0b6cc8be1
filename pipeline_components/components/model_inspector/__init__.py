"""Model inspection, one stage: the ModelInspector node and the SavedModel inspection library it runs.

- ``saved_model.py``: what a SavedModel holds (everything ``saved_model_cli show --all`` shows, and more);
- ``contract.py``: the serving contract: the declared one, and what breaks clients of the served version;
- ``render.py``: the report as Markdown and as a page;
- ``component.py``, ``executor.py``: the ``ModelInspector`` node (report + contract gate, after the Trainer);
- ``__main__.py``: ``python -m pipeline_components.components.model_inspector PATH`` (``runway model inspect``).

The InfraValidator uses the same library (``inspect_saved_model``, ``serving_signatures``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline_components.components.model_inspector.contract import (
    Difference,
    check_declared,
    compare_signatures,
    served_version_dir,
)
from pipeline_components.components.model_inspector.render import to_html, to_markdown
from pipeline_components.components.model_inspector.saved_model import inspect_saved_model, serving_signatures

if TYPE_CHECKING:
    from pipeline_components.components.model_inspector.component import ModelInspector

__all__ = [
    "Difference",
    "ModelInspector",
    "check_declared",
    "compare_signatures",
    "inspect_saved_model",
    "served_version_dir",
    "serving_signatures",
    "to_html",
    "to_markdown",
]


def __getattr__(name: str) -> object:
    # The TFX component costs seconds of imports: loaded on first use, so that `runway model inspect` and the
    # library's other users (the InfraValidator, the tests) do not pay for it.
    if name == "ModelInspector":
        from pipeline_components.components.model_inspector.component import ModelInspector

        return ModelInspector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
