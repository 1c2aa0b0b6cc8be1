"""Artifact types of runway's custom components."""

from __future__ import annotations

from tfx.types.artifact import Artifact


class ModelInspection(Artifact):
    """A SavedModel's inspection report (``inspection.json``, ``.md``, ``.html``) and its contract verdict."""

    TYPE_NAME = "runway.ModelInspection"
