"""The example consumer (examples/consumer/): its DAG is scheduled on the stable Asset and reads the version from
the event; its webhook receiver accepts runway's signed notification and refuses a forged one."""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from pipeline_components.client import notify
from pipeline_components.client.assets import stable_asset_uri
from pipeline_components.settings import CHECKOUT

EXAMPLE = CHECKOUT / "examples" / "consumer"


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_consumer_dag_runs_on_the_stable_asset_and_reads_the_newest_version() -> None:
    module = load(EXAMPLE / "dags" / "flights_stable_consumer.py")
    dag = module.flights_stable_consumer()
    assert module.STABLE.uri == stable_asset_uri("flights_delay")
    assert [asset.uri for asset in dag.timetable.asset_condition.objects] == [module.STABLE.uri]
    events = {
        module.STABLE: [
            SimpleNamespace(extra=notify.stable_payload("flights_delay", 1)),
            SimpleNamespace(extra=notify.stable_payload("flights_delay", 2, previous_version=1)),
        ]
    }
    assert [payload["version"] for payload in module.stable_versions(events)] == [1, 2]


@pytest.fixture
def receiver(tmp_path: Path) -> tuple[str, Path]:
    module = load(EXAMPLE / "webhook_receiver.py")
    events = tmp_path / "events.jsonl"
    server = module.make_server(0, events, secret="s3cret", query=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/runway", events
    server.shutdown()
    server.server_close()


def test_the_webhook_receiver_records_a_signed_event(
    receiver: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, events = receiver
    monkeypatch.setenv(notify.WEBHOOK_SECRET_ENV, "s3cret")
    result = notify.notify_stable("flights_delay", 1795299581, previous_version=1, webhook_urls=[url])
    assert result.all_delivered and result.deliveries[0].status == 204
    (line,) = events.read_text().splitlines()
    assert json.loads(line)["received"]["version"] == 1795299581


def test_the_webhook_receiver_refuses_a_forged_event_and_runway_does_not_retry_it(
    receiver: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, events = receiver
    monkeypatch.setenv(notify.WEBHOOK_SECRET_ENV, "wrong")
    result = notify.notify_stable("flights_delay", 3, webhook_urls=[url])
    (delivery,) = result.deliveries
    assert (delivery.delivered, delivery.status, delivery.attempts) == (False, 401, 1)
    assert not events.exists()
