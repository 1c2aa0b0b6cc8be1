"""A client for downstream apps of the serving fleet, and the notifications they receive.

- ``ServingClient`` (``client.py``): predict / classify by label (default ``stable``) or version, over REST or gRPC,
  with timeouts, retries on transient errors only, and typed errors (``pipeline_components.errors``); its parts:
  ``rest_transport.py`` and ``grpc_transport.py`` (one per protocol), ``retries.py`` (``RetryPolicy``, what is
  transient, which error each failure becomes), ``results.py`` (the answers); tensors, tf.Examples and requests are
  encoded by ``pipeline_components.serving_protos``, the project's one encoder;
- ``notify_stable`` (``notify.py``): the signed webhook and the Asset event sent when a version becomes ``stable``;
- ``stable_asset_uri`` / ``stable_asset`` (``assets.py``): the Airflow Asset a consumer DAG is scheduled on;
- ``load.py``: the load generator of the fleet's zero-downtime tests and benchmarks.

No TensorFlow: REST uses the standard library, gRPC uses ``grpcio`` with ``pipeline_components.serving_protos``.
The client imports nothing of ``pipeline_components.fleet`` (the fleet uses the client, not the other way round).
"""

from __future__ import annotations

from pipeline_components.client.assets import stable_asset, stable_asset_uri
from pipeline_components.client.client import ServingClient
from pipeline_components.client.notify import notify_stable
from pipeline_components.client.results import Classification, Prediction, VersionStatus
from pipeline_components.client.retries import NO_RETRY, RetryPolicy
from pipeline_components.serving_protos import make_example

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
