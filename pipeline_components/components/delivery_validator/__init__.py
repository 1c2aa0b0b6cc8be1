"""DeliveryValidator: is the new span a whole delivery with plausible labels? Rows, calendar coverage and the
label's shares against the previous spans."""

from __future__ import annotations

from pipeline_components.components.artifacts import SpanProfile
from pipeline_components.components.delivery_validator.component import DeliveryValidator

__all__ = ["DeliveryValidator", "SpanProfile"]
