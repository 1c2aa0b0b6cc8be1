"""The example consumer (examples/consumer/): its DAG is scheduled on the stable Asset and reads the version from
the event; its webhook receiver, a real server on loopback, accepts runway's signed notification once and refuses
everything else: a missing or bad signature, a stale timestamp, a replayed event, a body over its cap; and it
never fetches an address taken from the payload.

Each refusal test also sends the well-formed request it is a variant of, and expects it accepted: the receiver
must tell the two apart, not refuse both.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from pipeline_components.client import notify, webhooks
from pipeline_components.client.assets import stable_asset_uri
from pipeline_components.settings import CHECKOUT
from tests.unit.client.servers import Script, Step, rest_server

EXAMPLE = CHECKOUT / "examples" / "consumer"
SECRET = "s3cret"


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


@dataclass
class Receiver:
    url: str
    events: Path
    server: Any

    @property
    def recorded(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.events.read_text().splitlines()] if self.events.exists() else []

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        """POST exactly these bytes and headers (no client library adding or fixing anything); the status."""
        parsed = urllib.parse.urlsplit(self.url)
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        try:
            connection.request("POST", parsed.path, body=body, headers={"Content-Type": "application/json", **headers})
            return connection.getresponse().status
        finally:
            connection.close()


@contextmanager
def start(tmp_path: Path, **options: Any) -> Iterator[Receiver]:
    module = load(EXAMPLE / "webhook_receiver.py")
    events = tmp_path / "events.jsonl"
    server = module.make_server(0, events, secret=SECRET, **{"query": False, **options})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/runway", events, server)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    with start(tmp_path) as running:
        yield running


def signed(version: int, *, timestamp: int | None = None, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    """A stable-version event as runway's sender signs it (the same helper runway uses)."""
    payload = notify.stable_payload("flights_delay", version)
    body = json.dumps(payload, sort_keys=True).encode()
    return body, webhooks.signed_headers(body, secret, event_id=payload["id"], timestamp=timestamp)


def test_the_webhook_receiver_records_a_signed_event(receiver: Receiver) -> None:
    result = notify.notify_stable("flights_delay", 1795299581, previous_version=1, webhook_urls=[receiver.url],
                                  secret=SECRET)  # fmt: skip
    assert result.all_delivered and result.deliveries[0].status == 204
    (line,) = receiver.recorded
    assert line["received"]["version"] == 1795299581 and line["event_id"] == result.payload["id"]


def test_a_missing_or_bad_signature_is_refused(receiver: Receiver) -> None:
    body, headers = signed(1)
    unsigned = {key: value for key, value in headers.items() if key != webhooks.SIGNATURE_HEADER}
    assert receiver.post(body, unsigned) == 401
    _, forged = signed(1, secret="not-the-secret")
    assert receiver.post(body, {**headers, webhooks.SIGNATURE_HEADER: forged[webhooks.SIGNATURE_HEADER]}) == 401
    tampered = body.replace(b'"version": 1', b'"version": 2')
    assert tampered != body and receiver.post(tampered, headers) == 401  # the body is what was signed
    assert receiver.recorded == []
    assert receiver.post(body, headers) == 204  # the same event, signed with the secret: accepted


def test_runway_does_not_retry_a_refused_signature(receiver: Receiver) -> None:
    result = notify.notify_stable("flights_delay", 3, webhook_urls=[receiver.url], secret="wrong")
    (delivery,) = result.deliveries
    assert (delivery.delivered, delivery.status, delivery.attempts) == (False, 401, 1)
    assert receiver.recorded == []


def test_a_stale_timestamp_is_refused_even_with_a_good_signature(receiver: Receiver) -> None:
    stale_body, stale = signed(1, timestamp=int(time.time()) - 301)  # just past the default 5 minutes
    future_body, future = signed(2, timestamp=int(time.time()) + 301)
    assert receiver.post(stale_body, stale) == 401
    assert receiver.post(future_body, future) == 401
    fresh_body, fresh = signed(3, timestamp=int(time.time()) - 60)
    assert receiver.post(fresh_body, fresh) == 204
    assert [line["received"]["version"] for line in receiver.recorded] == [3]


def test_the_timestamp_tolerance_is_configurable(tmp_path: Path) -> None:
    with start(tmp_path, tolerance_s=10) as strict:
        body, headers = signed(1, timestamp=int(time.time()) - 60)
        assert strict.post(body, headers) == 401
        body, headers = signed(2, timestamp=int(time.time()) - 5)
        assert strict.post(body, headers) == 204


def test_a_replayed_event_is_refused_and_recorded_once(receiver: Receiver) -> None:
    body, headers = signed(1)
    assert receiver.post(body, headers) == 204
    assert receiver.post(body, headers) == 409  # the captured request, sent again
    resent = webhooks.signed_headers(body, SECRET, event_id=headers[webhooks.EVENT_ID_HEADER])
    assert receiver.post(body, resent) == 409  # the same event, re-signed with a new timestamp
    assert len(receiver.recorded) == 1


def test_a_replay_is_refused_after_the_receiver_restarts(tmp_path: Path) -> None:
    body, headers = signed(1)
    with start(tmp_path) as first:
        assert first.post(body, headers) == 204
    with start(tmp_path) as second:  # a new process reads the ids it already accepted from its events file
        assert second.post(body, headers) == 409
        assert len(second.recorded) == 1


def test_an_event_id_header_that_is_not_the_signed_one_is_refused(receiver: Receiver) -> None:
    body, headers = signed(1)
    assert receiver.post(body, {**headers, webhooks.EVENT_ID_HEADER: "evt_other"}) == 400
    assert receiver.post(body, headers) == 204


def test_a_body_over_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    with start(tmp_path, max_body_bytes=4096) as small:
        body, headers = signed(1)
        assert small.post(body, headers) == 204  # a real event is far below the cap
        parsed = urllib.parse.urlsplit(small.url)
        with socket.create_connection((parsed.hostname, parsed.port), timeout=5) as sock:
            # Announce 10 MB, send 1 KiB, then wait: a receiver reading the announced length would hang here
            # until the socket timeout; one that checks the length first answers 413 at once.
            sock.sendall(
                f"POST {parsed.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {10 * 1024 * 1024}\r\n\r\n".encode()
                + b"{"
                + b" " * 1023
            )
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.0 413") or answer.startswith(b"HTTP/1.1 413"), answer[:80]
        assert len(small.recorded) == 1


def test_a_receiver_without_a_secret_refuses_to_start(tmp_path: Path) -> None:
    module = load(EXAMPLE / "webhook_receiver.py")
    with pytest.raises(ValueError, match="RUNWAY_WEBHOOK_SECRET"):
        module.make_server(0, tmp_path / "events.jsonl", secret="", query=False)


def test_the_receiver_asks_its_own_fleet_never_an_address_from_the_payload(tmp_path: Path) -> None:
    own = Script([Step(200, {"model_spec": {"name": "flights_delay", "version": "7"}})])
    elsewhere = Script([Step(200, {"model_spec": {"name": "flights_delay", "version": "7"}})])
    with (
        rest_server(own) as own_url,
        rest_server(elsewhere) as payload_url,
        start(tmp_path, query=True, rest_url=own_url) as receiver,
    ):
        result = notify.notify_stable(
            "flights_delay", 7, rest_url=payload_url, webhook_urls=[receiver.url], secret=SECRET
        )
        assert result.all_delivered
        (line,) = receiver.recorded
    assert elsewhere.received == []  # the payload's rest_url was never fetched
    assert [item["path"] for item in own.received] == ["/v1/models/flights_delay/labels/stable/metadata"]
    assert line["confirmed"] == {"stable_version": 7, "matches": True}
