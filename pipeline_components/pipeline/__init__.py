"""The TFX pipeline definition (runtime environment only: imports TFX)."""

from pipeline_components.pipeline.factory import create_pipeline

__all__ = ["create_pipeline"]
