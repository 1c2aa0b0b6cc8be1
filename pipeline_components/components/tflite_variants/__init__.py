"""TFLite variants of the trained model, measured, gated and published beside the served version (docs/tflite.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline_components.components.tflite_variants.component import TFLitePublisher, TFLiteVariants

__all__ = ["TFLitePublisher", "TFLiteVariants"]


def __getattr__(name: str) -> object:
    # The components are loaded on first use: the executor imports this package's modules (data, measure,
    # report), and an eager import of component.py here would make the package and its executor import each other.
    if name in __all__:
        from pipeline_components.components.tflite_variants import component

        return getattr(component, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
