"""The Prometheus endpoint on the REST port, at the monitoring config's path."""

from __future__ import annotations

import re

import pytest

from tests.conformance.fixtures import MODEL_NAME
from tests.conformance.harness import ServerProcess
from tests.conformance.samples import ROWS

PATH = "/monitoring/prometheus/metrics"


def _value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match, f"{series} not in metrics:\n{text[:3000]}"
    return float(match.group(1))


def test_request_counts_and_latencies(shared_server: ServerProcess) -> None:
    before = shared_server.get(PATH)
    assert before.status == 200
    assert before.headers.get("Content-Type", "").startswith("text/plain")
    series = f':tensorflow:serving:request_count{{model_name="{MODEL_NAME}",status="OK"}}'
    start = _value(before.body.decode(), series) if series in before.body.decode() else 0.0
    for _ in range(3):
        assert shared_server.post(f"/v1/models/{MODEL_NAME}:predict", {"instances": ROWS}).status == 200
    text = shared_server.get(PATH).body.decode()
    assert _value(text, series) >= start + 3
    assert re.search(
        rf':tensorflow:serving:request_latency_count\{{model_name="{MODEL_NAME}",API="predict",'
        r'entrypoint="REST"\} [1-9]',
        text,
    )
    assert re.search(r':tensorflow:cc:saved_model:load_attempt_count\{model_path="[^"]+",status="success"\} 1', text)


def test_per_version_series(shared_server: ServerProcess, is_runway: bool) -> None:
    if not is_runway:
        pytest.skip("per-version series are runway's addition; TF Serving has none")
    assert shared_server.post(f"/v1/models/{MODEL_NAME}/versions/1:predict", {"instances": ROWS}).status == 200
    text = shared_server.get(PATH).body.decode()
    assert (
        _value(
            text,
            f'runway_serving_request_count{{model_name="{MODEL_NAME}",version="1",API="predict",'
            'entrypoint="REST",status="OK"}',
        )
        >= 1
    )
    assert (
        _value(
            text,
            f'runway_serving_request_latency_seconds_count{{model_name="{MODEL_NAME}",version="1",'
            'API="predict",entrypoint="REST"}',
        )
        >= 1
    )
    assert (
        _value(text, f'runway_serving_model_load_count{{model_name="{MODEL_NAME}",version="2",outcome="success"}}') == 1
    )
