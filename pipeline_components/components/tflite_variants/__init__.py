"""TFLite variants of the trained model, measured, gated and published beside the served version (docs/tflite.md)."""

from pipeline_components.components.tflite_variants.component import TFLitePublisher, TFLiteVariants

__all__ = ["TFLitePublisher", "TFLiteVariants"]
