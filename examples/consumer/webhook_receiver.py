"""Example webhook receiver: told by runway when a new model version becomes ``stable``, it checks the signature,
records the event, and asks the fleet for one prediction pinned to the new version.

    RUNWAY_WEBHOOK_SECRET=s3cret python examples/consumer/webhook_receiver.py --port 9000 --events events.jsonl
    # runway side (the promote step):
    RUNWAY_STABLE_WEBHOOK_URLS=http://127.0.0.1:9000/runway RUNWAY_WEBHOOK_SECRET=s3cret ...

It answers 204 once the event is recorded (runway retries 5xx and connection errors, not 4xx), 401 for a bad
signature, 400 for a payload that is not runway's. Only the standard library (plus runway's client for the
follow-up query, which needs no TensorFlow). A webhook is a hint: a consumer that must not miss a version also
reads the Airflow Asset (dags/flights_stable_consumer.py) or polls the label with ``ServingClient.resolve_version``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

EVENT = "runway.model_version.stable"
SIGNATURE_HEADER = "X-Runway-Signature"


def signature_ok(body: bytes, header: str | None, secret: str | None) -> bool:
    """True when no secret is configured, or the header is ``sha256=<HMAC-SHA256 of the body>``."""
    if not secret:
        return True
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(header, expected)


def make_server(
    port: int,
    events: Path,
    *,
    secret: str | None = None,
    query: bool = True,
    host: str = "127.0.0.1",
) -> ThreadingHTTPServer:
    """A receiver on ``host:port`` appending each accepted event as one JSON line to ``events``."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, message: str = "") -> None:
            body = json.dumps({"error": message}).encode() if message else b""
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not signature_ok(body, self.headers.get(SIGNATURE_HEADER), secret):
                return self._reply(401, "bad or missing X-Runway-Signature")
            try:
                payload = json.loads(body)
                model, version = payload["model"], int(payload["version"])
            except (ValueError, KeyError, TypeError):
                return self._reply(400, "not a runway stable-version event")
            if payload.get("event") != EVENT:
                return self._reply(400, f"unexpected event {payload.get('event')!r}")
            record = {"received": payload, "prediction": None}
            if query and payload.get("rest_url"):
                record["prediction"] = follow_up(payload["rest_url"], model, version)
            with lock, events.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            print(f"{model} version {version} is stable (was {payload.get('previous_version')})", flush=True)
            return self._reply(204)

    return ThreadingHTTPServer((host, port), Handler)


def follow_up(rest_url: str, model: str, version: int) -> Any:
    """One prediction from the new version, or the error's text (the event is recorded either way)."""
    from pipeline_components.client import ServingClient

    from_span = {
        "distance": 1617.0, "sched_dep_hour": 23, "sched_arr_hour": 4, "day_of_week": 6, "day": 1, "temp": 41.0,
        "dewp": 33.98, "humid": 75.88, "wind_speed": 4.60312, "precip": 0.0, "pressure": 1016.8, "visib": 10.0,
        "plane_year": 2008, "plane_seats": 200, "weather_known": 1, "plane_known": 1, "carrier": "B6",
        "origin": "JFK", "dest": "PSE", "month_name": "dec",
    }  # fmt: skip
    try:
        with ServingClient(rest_url=rest_url, grpc_target=None, model=model, timeout_s=5.0) as client:
            return client.predict(from_span, version=version).predictions
    except Exception as error:  # a receiver must acknowledge the event even if the fleet cannot answer right now
        return f"{type(error).__name__}: {error}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--events", type=Path, default=Path("runway-stable-events.jsonl"))
    parser.add_argument("--no-query", action="store_true", help="only record events, do not query the fleet")
    args = parser.parse_args()
    server = make_server(
        args.port, args.events, secret=os.environ.get("RUNWAY_WEBHOOK_SECRET"), query=not args.no_query, host=args.host
    )
    print(f"listening on http://{args.host}:{args.port}/ ; events -> {args.events}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
