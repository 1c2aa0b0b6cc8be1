"""Signed webhooks: what runway's sender puts on each POST, and what a receiver checks before it trusts one.

The scheme (Stripe / Standard Webhooks style), with a secret shared by runway and each receiver:

- ``X-Runway-Event-Id``: the event's id (also the payload's ``id``): the same on every retry of one event;
- ``X-Runway-Timestamp``: Unix seconds when this attempt was sent;
- ``X-Runway-Signature``: ``v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``; several comma-separated
  ``v1=`` values are accepted, so a secret can be rotated without downtime.

Signing the timestamp with the body makes a captured request useless after ``tolerance_s`` (default 5 minutes);
within it, a receiver refuses a second delivery of an event id it has already accepted (``ReplayGuard``). A
receiver verifies the body exactly as received (``verify``) before it parses it, and never acts on an address
taken from the payload: where its fleet is, is its own configuration.

    payload = verify(body, request_headers, secret)          # WebhookRejected(status=401/400) otherwise
    guard.accept(payload["id"], int(request_headers[TIMESTAMP_HEADER]), record)   # 409 for a replay
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from pipeline_components.errors import RunwayError

SIGNATURE_HEADER = "X-Runway-Signature"
TIMESTAMP_HEADER = "X-Runway-Timestamp"
EVENT_ID_HEADER = "X-Runway-Event-Id"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300.0
DEFAULT_MAX_BODY_BYTES = 64 * 1024  # a stable-version event is about 500 bytes


class WebhookRejected(RunwayError):
    """A webhook request a receiver must not act on; ``status`` is the HTTP status to answer with.

    401: missing or bad signature, or a stale timestamp; 400: not a runway event; 409: an event id already
    accepted (a replay); 411/413: no length, or a body over the cap; 503: too many recent events to remember.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """``X-Runway-Signature`` of a body sent at ``timestamp``: ``v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def signed_headers(body: bytes, secret: str | None, *, event_id: str, timestamp: int | None = None) -> dict[str, str]:
    """The id, timestamp and (with a secret) signature headers of one attempt to send ``body``."""
    sent_at = int(time.time()) if timestamp is None else timestamp
    headers = {EVENT_ID_HEADER: event_id, TIMESTAMP_HEADER: str(sent_at)}
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret, sent_at)
    return headers


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever its case (``http.server`` keeps the sender's; a plain dict does not fold it)."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a webhook's signature and timestamp, then parse it.

    Args:
        body: the request body exactly as received.
        headers: the request headers.
        secret: the secret shared with runway (``RUNWAY_WEBHOOK_SECRET`` on the sending side).
        tolerance_s: how far the signed timestamp may be from ``now``, either way.
        now: the current Unix time (tests).

    Returns:
        The payload, whose ``id`` is the event id of the header.

    Raises:
        ValueError: no secret (a receiver without one would accept anything).
        WebhookRejected: 401 for a missing or bad signature or a stale timestamp; 400 for a body that is not a
            runway event, or an event id that is not the signed one.
    """
    if not secret:
        raise ValueError("a webhook receiver needs the secret shared with runway (RUNWAY_WEBHOOK_SECRET)")
    stamp, given = _header(headers, TIMESTAMP_HEADER), _header(headers, SIGNATURE_HEADER)
    if not given:
        raise WebhookRejected(401, f"missing {SIGNATURE_HEADER}")
    if stamp is None or not stamp.strip().isdigit():
        raise WebhookRejected(401, f"missing or malformed {TIMESTAMP_HEADER}")
    timestamp = int(stamp)
    expected = sign(body, secret, timestamp)
    if not any(hmac.compare_digest(candidate.strip(), expected) for candidate in given.split(",")):
        raise WebhookRejected(401, f"bad {SIGNATURE_HEADER}")
    skew = (time.time() if now is None else now) - timestamp
    if abs(skew) > tolerance_s:
        raise WebhookRejected(
            401, f"stale {TIMESTAMP_HEADER}: signed {skew:+.0f} s from now (tolerance {tolerance_s:g} s)"
        )
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise WebhookRejected(400, "the body is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
        raise WebhookRejected(400, "not a runway event (no id)")
    if payload["id"] != _header(headers, EVENT_ID_HEADER):
        raise WebhookRejected(400, f"{EVENT_ID_HEADER} is not the signed event's id")
    return payload


class ReplayGuard:
    """The event ids a receiver accepted in the last ``tolerance_s``: a second delivery of one is a replay.

    An id older than the tolerance can be forgotten, since its signed timestamp is then stale anyway, so memory
    stays bounded by the event rate; ``capacity`` bounds it outright (beyond it, refuse rather than forget a
    recent id, which would reopen the replay window).

    Args:
        tolerance_s: the receiver's timestamp tolerance.
        capacity: the most ids remembered at once.
    """

    def __init__(self, *, tolerance_s: float = DEFAULT_TOLERANCE_S, capacity: int = 10_000) -> None:
        self.tolerance_s = tolerance_s
        self.capacity = capacity
        self._seen: OrderedDict[str, int] = OrderedDict()  # id -> signed timestamp, oldest accepted first
        self._lock = threading.Lock()

    def remember(self, event_id: str, timestamp: int) -> None:
        """Note an id accepted earlier (e.g. read back from the receiver's events file at start)."""
        with self._lock:
            self._seen[event_id] = timestamp

    def seen(self, event_id: str) -> bool:
        """Whether ``event_id`` was accepted (and is still remembered)."""
        with self._lock:
            return event_id in self._seen

    def accept(self, event_id: str, timestamp: int, record: Callable[[], None], *, now: float | None = None) -> None:
        """Run ``record`` for a new event id and remember it; refuse an id already accepted.

        ``record`` runs under the guard's lock, so two concurrent deliveries of one event record it once; an id
        is remembered only once ``record`` returned (an event that could not be recorded may be sent again).

        Raises:
            WebhookRejected: 409 for a replay, 503 when ``capacity`` recent ids are remembered.
        """
        with self._lock:
            horizon = (time.time() if now is None else now) - self.tolerance_s
            for old in [key for key, stamp in self._seen.items() if stamp < horizon]:
                del self._seen[old]
            if event_id in self._seen:
                raise WebhookRejected(409, f"event {event_id} was already received (a replay)")
            if len(self._seen) >= self.capacity:
                raise WebhookRejected(503, f"{self.capacity} events in the last {self.tolerance_s:g} s; try later")
            record()
            self._seen[event_id] = timestamp
