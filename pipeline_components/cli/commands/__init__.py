"""What each ``runway`` command does, one module per group of commands (their parsers: ``cli/parsers/``)."""

from __future__ import annotations

from pathlib import Path

from pipeline_components.boundary import locate_pipeline_config
from pipeline_components.config import PipelineConfig, load_pipeline_config
from pipeline_components.settings import Settings


def config_path(settings: Settings, name: str) -> Path:
    """The configuration file of pipeline ``name`` (or ``name`` itself when it is a YAML path)."""
    return locate_pipeline_config(settings.config_dir, name)


def pipeline_config(settings: Settings, name: str, *, require_schema: bool = True) -> PipelineConfig:
    """The validated configuration of pipeline ``name``."""
    return load_pipeline_config(config_path(settings, name), require_schema=require_schema)
