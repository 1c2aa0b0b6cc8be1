"""notify_stable: the webhook (retries, timeout, signature) and the Asset event's extra; it never raises."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from typing import Any

import pytest

from pipeline_components.client import notify
from pipeline_components.client.assets import stable_asset, stable_asset_uri
from tests.unit.client.servers import Script, Step, rest_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OutletEvents(dict):  # type: ignore[type-arg]
    """What Airflow hands a task as ``context["outlet_events"]``: an accessor per Asset with an ``extra``."""

    class Accessor:
        extra: dict[str, Any]

    def __missing__(self, key: Any) -> Any:
        self[key] = self.Accessor()
        return self[key]


def test_the_stable_asset_of_a_model() -> None:
    assert stable_asset_uri("flights_delay") == "runway://serving/flights_delay/stable"
    assert stable_asset("flights_delay").uri == "runway://serving/flights_delay/stable"
    with pytest.raises(ValueError):
        stable_asset_uri("a/b")


def test_webhook_and_asset_event_carry_the_same_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(notify.WEBHOOK_SECRET_ENV, "s3cret")
    script = Script([Step(204, {})])
    events = OutletEvents()
    with rest_server(script) as url:
        result = notify.notify_stable(
            "flights_delay",
            1795299581,
            previous_version=1795000000,
            rest_url="http://127.0.0.1:8501",
            run_id="manual__1",
            webhook_urls=[url + "/hook"],
            outlet_events=events,
        )
    assert result.all_delivered and result.asset_event
    (received,) = script.received
    assert received["path"] == "/hook"
    assert received["body"] == result.payload
    assert result.payload["event"] == notify.EVENT
    assert (result.payload["model"], result.payload["version"], result.payload["previous_version"]) == (
        "flights_delay",
        1795299581,
        1795000000,
    )
    assert events[stable_asset("flights_delay")].extra == result.payload


def test_the_signature_header_verifies_with_the_shared_secret() -> None:
    body = json.dumps({"version": 1}).encode()
    expected = "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert notify.sign(body, "k") == expected


def test_a_webhook_answering_503_is_retried_until_it_accepts() -> None:
    script = Script([Step(503), Step(503), Step(200, {})])
    with rest_server(script) as url:
        delivery = notify.post_webhook(url, {"version": 2}, attempts=3, backoff_s=0.01)
    assert delivery.delivered and delivery.attempts == 3 and len(script.received) == 3


def test_a_webhook_refusing_the_payload_is_not_retried() -> None:
    script = Script([Step(400, {"error": "bad"})])
    with rest_server(script) as url:
        delivery = notify.post_webhook(url, {"version": 2}, attempts=3, backoff_s=0.01)
    assert not delivery.delivered and delivery.attempts == 1 and delivery.status == 400


def test_a_slow_webhook_times_out(caplog: pytest.LogCaptureFixture) -> None:
    script = Script([Step(200, {}, delay_s=1.0)])
    with rest_server(script) as url:
        result = notify.notify_stable("m", 3, webhook_urls=[url], timeout_s=0.2, attempts=1)
    assert not result.all_delivered
    assert "timed out" in (result.deliveries[0].error or "").lower()


def test_a_webhook_that_is_down_never_fails_the_promotion(caplog: pytest.LogCaptureFixture) -> None:
    down = f"http://127.0.0.1:{free_port()}/hook"
    result = notify.notify_stable("flights_delay", 5, webhook_urls=[down], attempts=2)
    (delivery,) = result.deliveries
    assert not delivery.delivered and delivery.attempts == 2 and "refused" in (delivery.error or "").lower()
    assert "the promotion stands" in caplog.text


def test_webhook_urls_come_from_the_environment_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script([Step(200, {})])
    with rest_server(script) as url:
        monkeypatch.setenv(notify.WEBHOOK_URLS_ENV, f" {url}/a , {url}/b ")
        result = notify.notify_stable("flights_delay", 6)
    assert [d.url for d in result.deliveries] == [f"{url}/a", f"{url}/b"] and result.all_delivered
    assert not result.asset_event  # no Airflow task context: no Asset event
