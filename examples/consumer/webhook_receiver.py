"""Example webhook receiver: told by runway when a new model version becomes ``stable``, it checks that runway sent
it, records the event, and confirms with its own fleet that the label really points at that version.

    RUNWAY_WEBHOOK_SECRET=s3cret python examples/consumer/webhook_receiver.py --port 9000 --events events.jsonl \\
        --rest-url http://127.0.0.1:8501
    # runway side (the promote step):
    RUNWAY_STABLE_WEBHOOK_URLS=http://127.0.0.1:9000/runway RUNWAY_WEBHOOK_SECRET=s3cret ...

What it accepts: a POST whose ``X-Runway-Signature`` is the HMAC-SHA256 of ``"<X-Runway-Timestamp>.<body>"``
with the shared secret (``pipeline_components.client.webhooks``), signed at most ``--tolerance`` seconds ago
(default 300), with an event id it has not accepted before, and a body of at most ``--max-body`` bytes. It answers
204 once the event is recorded (runway retries 5xx and connection errors, not 4xx); 401 for a missing or bad
signature or a stale timestamp, 409 for a replayed event id, 411/413 for a body without a length or over the cap
(read no further), 400 for a payload that is not runway's. It refuses to start without a secret.

It never fetches an address taken from the payload: its fleet is ``--rest-url`` (else ``$RUNWAY_SERVING_REST_URL``,
else http://127.0.0.1:8501). A webhook is a hint: a consumer that must not miss a version also reads the Airflow
Asset (dags/flights_stable_consumer.py) or polls the label with ``ServingClient.resolve_version``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pipeline_components.client.webhooks import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TOLERANCE_S,
    TIMESTAMP_HEADER,
    ReplayGuard,
    WebhookRejected,
    verify,
)

EVENT = "runway.model_version.stable"
DEFAULT_REST_URL = "http://127.0.0.1:8501"
REST_URL_ENV = "RUNWAY_SERVING_REST_URL"


def read_body(headers: Any, stream: Any, max_body_bytes: int) -> bytes:
    """The request body, reading no more than ``max_body_bytes`` (a larger one is refused before it is read).

    Raises:
        WebhookRejected: 411 without a Content-Length, 400 for a malformed one, 413 over the cap.
    """
    length = headers.get("Content-Length")
    if length is None:
        raise WebhookRejected(411, "a Content-Length is required")
    if not length.strip().isdigit():
        raise WebhookRejected(400, f"malformed Content-Length {length!r}")
    if int(length) > max_body_bytes:
        raise WebhookRejected(413, f"body of {int(length)} bytes is over the {max_body_bytes}-byte limit")
    return bytes(stream.read(int(length)))


def accepted_events(events: Path, guard: ReplayGuard) -> None:
    """Remember the event ids already recorded in ``events``, so a restart does not reopen the replay window."""
    if not events.is_file():
        return
    with events.open() as handle:
        for line in handle:
            try:
                record = json.loads(line)
                guard.remember(str(record["event_id"]), int(record["timestamp"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line of an older format, or torn by a crash: nothing to remember


def make_server(
    port: int,
    events: Path,
    *,
    secret: str,
    query: bool = True,
    host: str = "127.0.0.1",
    rest_url: str = DEFAULT_REST_URL,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    read_timeout_s: float = 10.0,
) -> ThreadingHTTPServer:
    """A receiver on ``host:port`` appending each accepted event as one JSON line to ``events``.

    Args:
        port: 0 for any free port.
        events: the JSON-lines file of accepted events (also read at start: ids already accepted).
        secret: the secret shared with runway; required.
        query: confirm each event with the fleet at ``rest_url``.
        host: the address to listen on (loopback by default).
        rest_url: this receiver's own fleet (never an address from the payload).
        tolerance_s: how old (or early) a signed timestamp may be.
        max_body_bytes: the largest body read.
        read_timeout_s: a sender that stalls longer is cut off.

    Raises:
        ValueError: no secret.
    """
    if not secret:
        raise ValueError("the receiver needs the secret shared with runway: set RUNWAY_WEBHOOK_SECRET")
    guard = ReplayGuard(tolerance_s=tolerance_s)
    accepted_events(events, guard)
    file_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        timeout = read_timeout_s

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, message: str = "") -> None:
            body = json.dumps({"error": message}).encode() if message else b""
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if status in (411, 413):
                self.send_header("Connection", "close")  # the unread body must not be taken for a next request
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            try:
                body = read_body(self.headers, self.rfile, max_body_bytes)
                payload = verify(body, dict(self.headers.items()), secret, tolerance_s=tolerance_s)
                model, version = str(payload["model"]), int(payload["version"])
                if payload.get("event") != EVENT:
                    raise WebhookRejected(400, f"unexpected event {payload.get('event')!r}")
            except WebhookRejected as rejected:
                return self._reply(rejected.status, rejected.message)
            except (ValueError, KeyError, TypeError):
                return self._reply(400, "not a runway stable-version event")
            timestamp = int(self.headers[TIMESTAMP_HEADER])
            if guard.seen(payload["id"]):  # before asking the fleet: a replay costs nothing
                return self._reply(409, f"event {payload['id']} was already received (a replay)")
            line = {"event_id": payload["id"], "timestamp": timestamp, "received": payload, "confirmed": None}
            if query:
                line["confirmed"] = confirm(rest_url, model, version)

            def record() -> None:
                with file_lock, events.open("a") as handle:
                    handle.write(json.dumps(line) + "\n")

            try:
                guard.accept(payload["id"], timestamp, record)
            except WebhookRejected as rejected:
                return self._reply(rejected.status, rejected.message)
            print(f"{model} version {version} is stable (was {payload.get('previous_version')})", flush=True)
            return self._reply(204)

    return ThreadingHTTPServer((host, port), Handler)


def confirm(rest_url: str, model: str, version: int) -> dict[str, Any]:
    """Ask this receiver's own fleet which version ``stable`` points at (the event is recorded either way)."""
    from pipeline_components.client import NO_RETRY, ServingClient

    try:  # quick and once: runway waits 5 s for the answer to its POST
        with ServingClient(rest_url=rest_url, grpc_target=None, model=model, timeout_s=2.0, retry=NO_RETRY) as client:
            serving = client.resolve_version(label="stable")
    except Exception as error:  # a receiver must acknowledge the event even if the fleet cannot answer right now
        return {"error": f"{type(error).__name__}: {error}", "at": time.time()}
    return {"stable_version": serving, "matches": serving == version}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--events", type=Path, default=Path("runway-stable-events.jsonl"))
    parser.add_argument("--rest-url", default=os.environ.get(REST_URL_ENV) or DEFAULT_REST_URL, help="your fleet")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE_S, help="seconds (default 300)")
    parser.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY_BYTES, help="bytes (default 65536)")
    parser.add_argument("--no-query", action="store_true", help="only record events, do not ask the fleet")
    args = parser.parse_args()
    secret = os.environ.get("RUNWAY_WEBHOOK_SECRET", "")
    if not secret:
        sys.exit("RUNWAY_WEBHOOK_SECRET is not set: set it to the secret runway signs its webhooks with")
    server = make_server(
        args.port,
        args.events,
        secret=secret,
        query=not args.no_query,
        host=args.host,
        rest_url=args.rest_url,
        tolerance_s=args.tolerance,
        max_body_bytes=args.max_body,
    )
    print(f"listening on http://{args.host}:{args.port}/ ; events -> {args.events}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
