"""Artifact types of runway's custom components (ML Metadata records them under these ``TYPE_NAME``s)."""

from __future__ import annotations

from tfx.types.artifact import Artifact


class DriftSkewReport(Artifact):
    """Drift and skew measurements (``drift_skew.json``), the report page and the gate verdict."""

    TYPE_NAME = "runway.DriftSkewReport"


class ExpectationsResult(Artifact):
    """The suite as run (``suite.json``), GX's validation result (``validation_result.json``), the Data Docs
    (``data_docs/index.html``) and the gate verdict."""

    TYPE_NAME = "runway.ExpectationsResult"


class ModelInspection(Artifact):
    """A SavedModel's inspection report (``inspection.json``, ``.md``, ``.html``) and its contract verdict."""

    TYPE_NAME = "runway.ModelInspection"


class TFLiteModels(Artifact):
    """TFLite variants of a model: ``variants/<name>.tflite``, ``encoding.json``, ``encoder.py`` and the report."""

    TYPE_NAME = "runway.TFLiteModels"


class TFLitePublication(Artifact):
    """Where the accepted variants were published (``<store>/<model>/<version>/tflite``), and the verdict."""

    TYPE_NAME = "runway.TFLitePublication"


class SpanProfile(Artifact):
    """What one span delivered (``profile.json``: rows, calendar units covered, label counts), the page and the
    gate verdict; the next spans' DeliveryValidator compares against these."""

    TYPE_NAME = "runway.SpanProfile"
