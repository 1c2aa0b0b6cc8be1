"""The evaluation stage: TFX's Evaluator on the new span and on a trusted set (the 'eval' splits of the spans the
served model was blessed on), one blessing that says which evaluation refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline_components.components.evaluator.component import Evaluator
    from pipeline_components.components.evaluator.trusted import TrustedExamplesStrategy

__all__ = ["Evaluator", "TrustedExamplesStrategy"]


def __getattr__(name: str) -> object:
    # Loaded on first use: reading a verdict (results.py, for `runway report` and the task's figures) must not
    # import TFMA and TFX's Evaluator.
    if name == "Evaluator":
        from pipeline_components.components.evaluator.component import Evaluator

        return Evaluator
    if name == "TrustedExamplesStrategy":
        from pipeline_components.components.evaluator.trusted import TrustedExamplesStrategy

        return TrustedExamplesStrategy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
