"""Tell downstream consumers that a new version of a model became ``stable``: a webhook and an Airflow Asset event.

The fleet's promote step calls ``notify_stable`` right after ``stable`` moved on every instance. Notification is
best effort by design: a webhook that is down is retried a few times, then logged; it never fails the promotion
(the version is already serving). Consumers that must not miss an event use the Asset (Airflow stores it) and
treat the webhook as a low-latency hint; both carry the same payload.

Webhook URLs: the ``webhook_urls`` argument, else ``RUNWAY_STABLE_WEBHOOK_URLS`` (comma separated). Each POST is
signed with ``RUNWAY_WEBHOOK_SECRET`` (the timestamp and the body, see ``webhooks``); without a secret nothing is
sent, and the log says what to set, unless ``RUNWAY_WEBHOOK_ALLOW_UNSIGNED=1`` says to send unsigned on purpose.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline_components.client.assets import stable_asset, stable_asset_uri
from pipeline_components.client.webhooks import SIGNATURE_HEADER, sign, signed_headers

log = logging.getLogger(__name__)

EVENT = "runway.model_version.stable"
WEBHOOK_URLS_ENV = "RUNWAY_STABLE_WEBHOOK_URLS"
WEBHOOK_SECRET_ENV = "RUNWAY_WEBHOOK_SECRET"
ALLOW_UNSIGNED_ENV = "RUNWAY_WEBHOOK_ALLOW_UNSIGNED"
__all__ = ["SIGNATURE_HEADER", "notify_stable", "post_webhook", "sign", "stable_payload"]
# HTTP statuses worth another try: the receiver is overloaded or restarting. Any other 4xx is final.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """What happened to one webhook URL."""

    url: str
    delivered: bool
    attempts: int
    status: int | None = None
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Notification:
    """The payload sent and how each channel fared."""

    payload: dict[str, Any]
    deliveries: list[Delivery] = field(default_factory=list)
    asset_event: bool = False

    @property
    def all_delivered(self) -> bool:
        return all(delivery.delivered for delivery in self.deliveries)


def stable_payload(
    model_name: str, version: int, *, previous_version: int | None = None, **details: Any
) -> dict[str, Any]:
    """The JSON payload of the webhook and the ``extra`` of the Asset event (one format for both).

    Args:
        model_name: the served model.
        version: the version ``stable`` now points at.
        previous_version: the version it pointed at before (None for the first one).
        **details: more keys, e.g. ``rest_url``, ``grpc_target``, ``run_id`` (a None value is left out).

    Returns:
        The payload, with a new event ``id`` (the same on every retry of this event).
    """
    payload: dict[str, Any] = {
        "id": f"evt_{uuid.uuid4().hex}",
        "event": EVENT,
        "model": model_name,
        "version": int(version),
        "label": "stable",
        "previous_version": None if previous_version is None else int(previous_version),
        "asset": stable_asset_uri(model_name),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    payload.update({key: value for key, value in details.items() if value is not None and value != ""})
    return payload


def webhook_urls_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """``RUNWAY_STABLE_WEBHOOK_URLS`` as a list (empty when unset)."""
    env = os.environ if environ is None else environ
    return [url.strip() for url in env.get(WEBHOOK_URLS_ENV, "").split(",") if url.strip()]


def allow_unsigned_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """``RUNWAY_WEBHOOK_ALLOW_UNSIGNED``: ``1``/``true``/``yes`` allows it; unset, empty or anything else does not."""
    env = os.environ if environ is None else environ
    value = env.get(ALLOW_UNSIGNED_ENV, "").strip().lower()
    if value not in ("", "0", "false", "no", "1", "true", "yes"):
        log.error("%s=%r is not a yes/no value; unsigned webhooks stay refused", ALLOW_UNSIGNED_ENV, value)
    return value in ("1", "true", "yes")


UNSIGNED_REFUSED = (
    f"not sent: no webhook secret; set {WEBHOOK_SECRET_ENV} (the same secret on each receiver), "
    f"or {ALLOW_UNSIGNED_ENV}=1 to send unsigned webhooks on purpose"
)


def post_webhook(
    url: str,
    payload: Mapping[str, Any],
    *,
    secret: str | None,
    allow_unsigned: bool = False,
    timeout_s: float = 5.0,
    attempts: int = 3,
    backoff_s: float = 0.5,
) -> Delivery:
    """POST the payload as signed JSON; retry connection errors, timeouts and 408/425/429/5xx with backoff.

    Each attempt is signed with its own timestamp (a retry after a backoff is not stale); the event id stays.

    Args:
        url: the receiver.
        payload: the event (``stable_payload``); its ``id`` goes in ``X-Runway-Event-Id``.
        secret: the shared secret; None or empty refuses to send unless ``allow_unsigned``.
        allow_unsigned: send without a signature (only for a receiver that checks nothing, on purpose).
        timeout_s, attempts, backoff_s: per POST, how many tries, the first wait (doubled each time).

    Returns:
        The outcome; never raises.
    """
    if not secret and not allow_unsigned:
        return Delivery(url=url, delivered=False, attempts=0, error=UNSIGNED_REFUSED)
    body = json.dumps(payload, sort_keys=True).encode()
    event_id = str(payload.get("id") or f"evt_{uuid.uuid4().hex}")
    error = ""
    status: int | None = None
    for attempt in range(1, attempts + 1):
        headers = {"Content-Type": "application/json", "User-Agent": "runway-notify"}
        headers.update(signed_headers(body, secret, event_id=event_id))
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return Delivery(url=url, delivered=True, attempts=attempt, status=response.status)
        except urllib.error.HTTPError as http_error:
            status, error = http_error.code, f"HTTP {http_error.code} {http_error.reason}"
            if http_error.code not in RETRY_STATUSES:
                break
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as network_error:
            status = None
            reason = getattr(network_error, "reason", network_error)
            error = f"{type(network_error).__name__}: {reason}"
        if attempt < attempts:
            time.sleep(backoff_s * 2 ** (attempt - 1))
    return Delivery(url=url, delivered=False, attempts=attempt, status=status, error=error)


def notify_stable(
    model_name: str,
    version: int,
    *,
    previous_version: int | None = None,
    rest_url: str | None = None,
    grpc_target: str | None = None,
    run_id: str | None = None,
    webhook_urls: Sequence[str] | None = None,
    outlet_events: Any = None,
    timeout_s: float = 5.0,
    attempts: int = 3,
    extra: Mapping[str, Any] | None = None,
    secret: str | None = None,
    allow_unsigned: bool | None = None,
) -> Notification:
    """Announce that ``version`` of ``model_name`` is now ``stable`` on the whole fleet. Never raises.

    Args:
        model_name: the served model, e.g. ``flights_delay``.
        version: the version ``stable`` now points at.
        previous_version: the version it pointed at before (None for the first one).
        rest_url, grpc_target: where clients reach the fleet (the load balancer), put in the payload.
        run_id: the Airflow run that promoted it.
        webhook_urls: URLs to POST to; None reads ``RUNWAY_STABLE_WEBHOOK_URLS``.
        outlet_events: the running task's ``context["outlet_events"]``. The task must declare
            ``stable_asset(model_name)`` in its ``outlets``; Airflow then records the Asset event when the task
            succeeds, and this sets the event's ``extra`` to the payload. None: no Asset event (e.g. a CLI call).
        timeout_s, attempts: per webhook POST.
        extra: more keys for the payload.
        secret: the webhook signing secret; None reads ``RUNWAY_WEBHOOK_SECRET``.
        allow_unsigned: send unsigned when there is no secret; None reads ``RUNWAY_WEBHOOK_ALLOW_UNSIGNED``.

    Returns:
        The payload and each webhook's delivery; failures are logged (an error for an unsigned refusal, a
        warning otherwise), not raised.
    """
    details = {"rest_url": rest_url, "grpc_target": grpc_target, "run_id": run_id, **(extra or {})}
    payload = stable_payload(model_name, version, previous_version=previous_version, **details)
    asset_event = False
    if outlet_events is not None:
        try:
            outlet_events[stable_asset(model_name)].extra = dict(payload)
            asset_event = True
        except Exception as error:  # best effort: the promotion has happened whatever Airflow says here
            log.warning("could not attach the stable version to the Asset event %s: %s", payload["asset"], error)
    urls = list(webhook_urls) if webhook_urls is not None else webhook_urls_from_env()
    secret = secret if secret is not None else os.environ.get(WEBHOOK_SECRET_ENV) or None
    unsigned_ok = allow_unsigned if allow_unsigned is not None else allow_unsigned_from_env()
    if urls and not secret:
        if unsigned_ok:
            log.warning(
                "sending unsigned webhooks (%s=1): receivers cannot tell them from forgeries", ALLOW_UNSIGNED_ENV
            )
        else:
            log.error("webhooks to %s %s", ", ".join(urls), UNSIGNED_REFUSED)
    deliveries = [
        post_webhook(url, payload, secret=secret, allow_unsigned=unsigned_ok, timeout_s=timeout_s, attempts=attempts)
        for url in urls
    ]
    for delivery in deliveries:
        if delivery.attempts == 0:
            continue  # refused before sending: said above
        if delivery.delivered:
            log.info(
                "notified %s: %s version %s is stable (HTTP %s)", delivery.url, model_name, version, delivery.status
            )
        else:
            log.warning(
                "webhook %s not notified that %s version %s is stable after %d attempt(s): %s; the promotion stands",
                delivery.url,
                model_name,
                version,
                delivery.attempts,
                delivery.error,
            )
    return Notification(payload=payload, deliveries=deliveries, asset_event=asset_event)
