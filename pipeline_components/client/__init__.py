"""A client for downstream apps of the serving fleet, and the notifications they receive.

- ``ServingClient`` (``client.py``): predict / classify by label (default ``stable``) or version, over REST or gRPC,
  with timeouts, retries on transient errors only, and typed errors (``pipeline_components.errors``);
- ``notify_stable`` (``notify.py``): the webhook and Asset event sent when a version becomes ``stable``;
- ``stable_asset_uri`` / ``stable_asset`` (``assets.py``): the Airflow Asset a consumer DAG is scheduled on.

No TensorFlow: REST uses the standard library, gRPC uses ``grpcio`` with ``pipeline_components.serving_protos``.
"""

from __future__ import annotations

from pipeline_components.client.assets import stable_asset, stable_asset_uri
from pipeline_components.client.client import (
    NO_RETRY,
    Classification,
    Prediction,
    RetryPolicy,
    ServingClient,
    VersionStatus,
    make_example,
)
from pipeline_components.client.notify import notify_stable

__all__ = [
    "NO_RETRY",
    "Classification",
    "Prediction",
    "RetryPolicy",
    "ServingClient",
    "VersionStatus",
    "make_example",
    "notify_stable",
    "stable_asset",
    "stable_asset_uri",
]
