"""Names of the Airflow Assets the serving fleet updates (light: no Airflow import unless asked for an Asset).

A rollout's promote task declares ``stable_asset(model)`` as an outlet; Airflow records an Asset event when it
succeeds, with the new version in the event's ``extra`` (see ``notify.notify_stable``). A downstream DAG scheduled
on the same Asset runs once per new stable version (``examples/consumer/dags/flights_consumer.py``).
"""

from __future__ import annotations

from typing import Any

ASSET_SCHEME = "runway"


def stable_asset_uri(model_name: str) -> str:
    """``runway://serving/<model>/stable``: the Asset that changes when a new version of the model becomes stable."""
    if not model_name or "/" in model_name:
        raise ValueError(f"model name {model_name!r} must be a non-empty name without '/'")
    return f"{ASSET_SCHEME}://serving/{model_name}/stable"


def stable_asset(model_name: str) -> Any:
    """The ``airflow.sdk.Asset`` of ``stable_asset_uri(model_name)`` (imports Airflow; use in DAG files)."""
    from airflow.sdk import Asset

    return Asset(stable_asset_uri(model_name))
