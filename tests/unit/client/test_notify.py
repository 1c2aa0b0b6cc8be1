"""notify_stable: the webhook (signed, retries, timeout; refused unsigned) and the Asset event's extra; it never
raises. The receiving side's checks are in test_consumer_example.py."""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
import time
from typing import Any

import pytest

from pipeline_components.client import notify, webhooks
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


def test_each_post_signs_its_timestamp_and_body_and_names_the_event() -> None:
    script = Script([Step(204, {})])
    payload = notify.stable_payload("flights_delay", 1)
    before = int(time.time())
    with rest_server(script) as url:
        delivery = notify.post_webhook(url, payload, secret="k")
    assert delivery.delivered
    (received,) = script.received
    headers, body = received["headers"], received["raw"]
    timestamp = int(headers[webhooks.TIMESTAMP_HEADER])
    assert before <= timestamp <= time.time()
    assert headers[webhooks.EVENT_ID_HEADER] == payload["id"] == received["body"]["id"]
    digest = hmac.new(b"k", f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers[webhooks.SIGNATURE_HEADER] == f"v1={digest}"  # HMAC-SHA256 of "<timestamp>.<body>"
    assert webhooks.verify(body, headers, "k") == payload


def test_no_secret_means_nothing_is_sent_and_the_log_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(notify.WEBHOOK_SECRET_ENV, raising=False)
    monkeypatch.delenv(notify.ALLOW_UNSIGNED_ENV, raising=False)
    script = Script([Step(204, {})])
    with rest_server(script) as url, caplog.at_level(logging.ERROR):
        result = notify.notify_stable("flights_delay", 1, webhook_urls=[url])
    assert script.received == []  # not one unsigned request left runway
    (delivery,) = result.deliveries
    assert not delivery.delivered and delivery.attempts == 0
    for text in (delivery.error or "", caplog.text):
        assert "RUNWAY_WEBHOOK_SECRET" in text and "RUNWAY_WEBHOOK_ALLOW_UNSIGNED=1" in text


def test_unsigned_webhooks_go_out_only_when_allowed_on_purpose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(notify.WEBHOOK_SECRET_ENV, raising=False)
    monkeypatch.setenv(notify.ALLOW_UNSIGNED_ENV, "1")
    script = Script([Step(204, {})])
    with rest_server(script) as url:
        result = notify.notify_stable("flights_delay", 1, webhook_urls=[url])
    assert result.all_delivered
    (received,) = script.received
    assert webhooks.SIGNATURE_HEADER not in received["headers"]
    assert received["headers"][webhooks.EVENT_ID_HEADER] == result.payload["id"]


@pytest.mark.parametrize("value", ["", "0", "no", "maybe"])
def test_anything_but_a_yes_keeps_unsigned_webhooks_refused(value: str) -> None:
    assert notify.allow_unsigned_from_env({notify.ALLOW_UNSIGNED_ENV: value}) is False


def test_a_webhook_answering_503_is_retried_until_it_accepts() -> None:
    script = Script([Step(503), Step(503), Step(200, {})])
    payload = notify.stable_payload("m", 2)
    with rest_server(script) as url:
        delivery = notify.post_webhook(url, payload, secret="k", attempts=3, backoff_s=0.01)
    assert delivery.delivered and delivery.attempts == 3 and len(script.received) == 3
    # One event, so one id on every try; each try is signed for its own timestamp and verifies.
    assert {item["headers"][webhooks.EVENT_ID_HEADER] for item in script.received} == {payload["id"]}
    for item in script.received:
        assert webhooks.verify(item["raw"], item["headers"], "k") == payload


def test_a_webhook_refusing_the_payload_is_not_retried() -> None:
    script = Script([Step(400, {"error": "bad"})])
    with rest_server(script) as url:
        delivery = notify.post_webhook(url, {"version": 2}, secret="k", attempts=3, backoff_s=0.01)
    assert not delivery.delivered and delivery.attempts == 1 and delivery.status == 400


def test_a_slow_webhook_times_out(caplog: pytest.LogCaptureFixture) -> None:
    script = Script([Step(200, {}, delay_s=1.0)])
    with rest_server(script) as url:
        result = notify.notify_stable("m", 3, webhook_urls=[url], timeout_s=0.2, attempts=1, secret="k")
    assert not result.all_delivered
    assert "timed out" in (result.deliveries[0].error or "").lower()


def test_a_webhook_that_is_down_never_fails_the_promotion(caplog: pytest.LogCaptureFixture) -> None:
    down = f"http://127.0.0.1:{free_port()}/hook"
    result = notify.notify_stable("flights_delay", 5, webhook_urls=[down], attempts=2, secret="k")
    (delivery,) = result.deliveries
    assert not delivery.delivered and delivery.attempts == 2 and "refused" in (delivery.error or "").lower()
    assert "the promotion stands" in caplog.text


def test_webhook_urls_come_from_the_environment_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(notify.WEBHOOK_SECRET_ENV, "k")
    script = Script([Step(200, {})])
    with rest_server(script) as url:
        monkeypatch.setenv(notify.WEBHOOK_URLS_ENV, f" {url}/a , {url}/b ")
        result = notify.notify_stable("flights_delay", 6)
    assert [d.url for d in result.deliveries] == [f"{url}/a", f"{url}/b"] and result.all_delivered
    assert not result.asset_event  # no Airflow task context: no Asset event
