"""InfraValidator: a real model server loads and answers for the candidate before it may be pushed."""

from __future__ import annotations

from pipeline_components.components.infra_validator.component import InfraValidator

__all__ = ["InfraValidator"]
