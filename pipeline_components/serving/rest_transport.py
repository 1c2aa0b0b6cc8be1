"""The REST API's HTTP transport: a thread per connection, with a cap, deadlines and a body size limit.

TF Serving's HTTP server (libevent) accepts every connection and runs requests on ``--rest_api_num_threads``
threads. Here each open connection has a thread of its own, so three limits keep a client from holding the server:

- at most ``max_connections`` open at once; one more is answered 503 with TF Serving's error body and closed at
  once, never queued (a load balancer retries it on another instance);
- a request (request line, headers and body) must arrive within ``timeout_s`` of the server starting to wait for it,
  and an idle keep-alive connection is closed after that time: a client that sends slowly or not at all
  (slowloris) loses its connection instead of holding a thread;
- a body over ``max_body_bytes`` is answered 413 without being parsed.

``drain`` stops the port the way TF Serving stops on SIGTERM: no new connection is accepted, idle keep-alive
connections are closed (a load balancer retries a request that meets a closed connection on another instance), and
requests already being processed are answered, with ``Connection: close``, before it returns. An answer leaves in one
write, headers and body together, so no client ever gets headers whose body never comes.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pipeline_components.errors import ServingError
from pipeline_components.serving import status

log = logging.getLogger(__name__)

_DRAIN_LIMIT = 1 << 30  # a body over the size limit is read and dropped up to this size, else the connection closes


@dataclass(frozen=True)
class Limits:
    """What one REST port allows.

    Attributes:
        max_connections: open connections at once (``--runway_rest_max_connections``).
        max_active_requests: requests processed at once (``--rest_api_num_threads``).
        timeout_s: how long a request may take to arrive, and an idle connection may stay open; None: no limit.
        max_body_bytes: the largest request body (``--runway_max_request_bytes``).
    """

    max_connections: int
    max_active_requests: int
    timeout_s: float | None
    max_body_bytes: int


def error_body(message: str) -> bytes:
    """TF Serving's REST error body: ``{"error": "<message>"}``."""
    return json.dumps({"error": message}, indent=1).encode()


class LimitedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server with a cap on open connections.

    Args:
        address: (host, port) to listen on; an IPv6 host listens over IPv6.
        handler: the request handler class.
        limits: the limits.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *, limits: Limits) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.limits = limits
        self.connection_slots = threading.BoundedSemaphore(limits.max_connections)
        self.request_slots = threading.BoundedSemaphore(limits.max_active_requests)
        self.draining = threading.Event()
        self._connections: dict[socket.socket, bool] = {}  # open connection -> a request is being processed on it
        self._changed = threading.Condition()
        super().__init__(address, handler)

    # --- connection states, for drain ------------------------------------------------------------------------------

    def connection_idle(self, connection: socket.socket) -> bool:
        """Mark ``connection`` as waiting for its next request; False when draining (the handler closes it)."""
        with self._changed:
            self._connections[connection] = False
            self._changed.notify_all()
            return not self.draining.is_set()

    def connection_busy(self, connection: socket.socket) -> None:
        """Mark ``connection`` as processing a request: ``drain`` waits for its answer."""
        with self._changed:
            self._connections[connection] = True

    def connection_closed(self, connection: socket.socket) -> None:
        with self._changed:
            self._connections.pop(connection, None)
            self._changed.notify_all()

    def drain(self, timeout_s: float) -> bool:
        """Stop accepting, close idle connections and wait up to ``timeout_s`` for the requests being processed.

        Returns:
            True when every request in progress was answered in time.
        """
        self.draining.set()
        self.shutdown()  # the accept loop ends; the listening socket closes in server_close
        self.server_close()
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for connection, busy in self._connections.items():
                    if not busy:
                        with contextlib.suppress(OSError):
                            connection.shutdown(socket.SHUT_RDWR)  # wakes its thread, blocked reading
                if not any(self._connections.values()):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning(
                        "%d REST requests were still running after %g s of drain", len(self._connections), timeout_s
                    )
                    return False
                self._changed.wait(left)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.connection_slots.acquire(blocking=False):
            log.warning(
                "refused a REST connection from %s: %d connections are open (--runway_rest_max_connections)",
                client_address,
                self.limits.max_connections,
            )
            _refuse(request, self.limits.max_connections)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.connection_slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connection_closed(request)
            self.connection_slots.release()


def _refuse(connection: socket.socket, limit: int) -> None:
    """Answer 503 from the accepting thread without waiting on the client: nothing here may block."""
    body = error_body(f"The server has {limit} REST connections open, its limit; retry later or elsewhere")
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        connection.setblocking(False)
        # Read what has arrived already: closing with unread data would reset the connection, losing the answer.
        with contextlib.suppress(BlockingIOError):
            connection.recv(1 << 16)
        connection.send(head + body)
    except OSError:
        pass  # the client is gone or its window is full: closing is all that is left


class _DeadlineReader(io.RawIOBase):
    """A socket's input with a deadline for the whole of what is read until ``stop`` (a per-recv timeout would
    let a client that sends a byte every few seconds hold the connection for ever)."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self._deadline: float | None = None

    def readable(self) -> bool:
        return True

    def start(self, seconds: float | None) -> None:
        self._deadline = None if seconds is None else time.monotonic() + seconds

    def stop(self) -> None:
        self._deadline = None

    def readinto(self, buffer: Any) -> int:
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request did not arrive in time")
            self._connection.settimeout(left)
        return self._connection.recv_into(buffer)


class LimitedHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 transport under ``LimitedHTTPServer``'s limits: reading bodies, answering, TF Serving's error body.

    Subclasses implement the ``do_*`` methods; ``read_body`` gives a request's body or answers it with an error.
    """

    server: LimitedHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "runway-model-server"
    # Headers and body leave in two writes; with Nagle's algorithm on, the body of every answer after the first on
    # a keep-alive connection waits for the client's delayed ACK (~40 ms on Linux). TF Serving sets TCP_NODELAY too.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.rfile.close()
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        # The deadline covers waiting for the request line too: an idle keep-alive connection is closed after it.
        # A TimeoutError anywhere below closes the connection (BaseHTTPRequestHandler.handle_one_request).
        if not self.server.connection_idle(self.connection):
            self.close_connection = True  # draining: no next request on this connection
            return
        self._reader.start(self.server.limits.timeout_s)
        super().handle_one_request()

    def parse_request(self) -> bool:
        # The request line has arrived: from here on the connection's request is answered even while draining.
        self.server.connection_busy(self.connection)
        return super().parse_request()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def record_refusal(self, error: ServingError) -> None:
        """Count a request refused before it was parsed (too large, too slow); a subclass records it."""

    @contextlib.contextmanager
    def request_slot(self) -> Iterator[None]:
        """Hold one of the ``max_active_requests`` processing slots while the body of the ``with`` runs.

        Raises:
            ServingError: UNAVAILABLE (503) when no slot frees up within the timeout.
        """
        limits = self.server.limits
        if not self.server.request_slots.acquire(timeout=limits.timeout_s):
            raise ServingError(
                status.UNAVAILABLE,
                f"All {limits.max_active_requests} REST request threads (--rest_api_num_threads) stayed busy for "
                f"{limits.timeout_s:g} s; retry later",
            )
        try:
            yield
        finally:
            self.server.request_slots.release()

    # --- answering -------------------------------------------------------------------------------------------------

    def send_body(self, code: int, body: bytes, content_type: str = "application/json", close: bool = False) -> None:
        """Answer with ``body``; ``close`` ends the connection after it."""
        # A client that does not read its answer gets the same time as one that does not send its request.
        self.connection.settimeout(self.server.limits.timeout_s)
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close or self.server.draining.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        # One write for headers and body (end_headers would send the headers alone): a process that stops between
        # two writes would leave the client with headers and no body, which no load balancer can retry.
        if hasattr(self, "_headers_buffer"):  # HTTP/1.x; an HTTP/0.9 answer has no headers
            self._headers_buffer.append(b"\r\n" + body)
            self.flush_headers()
        else:
            self.wfile.write(body)

    def send_error_json(self, error: ServingError, *, http_code: int | None = None, close: bool = False) -> None:
        """Answer ``{"error": ...}`` with the HTTP status of the error's code (or ``http_code``)."""
        self.send_body(http_code or status.http_status(error.code), error_body(error.message), close=close)

    def _refuse_request(self, error: ServingError, http_code: int, close: bool = True) -> None:
        self.send_error_json(error, http_code=http_code, close=close)
        self.record_refusal(error)

    # --- reading ---------------------------------------------------------------------------------------------------

    def handle_expect_100(self) -> bool:
        if self._declared_length() > self.server.limits.max_body_bytes:
            self._refuse_request(self._too_large(), 413)
            return False
        return super().handle_expect_100()

    def read_body(self) -> bytes | None:
        """The request body, or None after answering 413 (too large), 408 (too slow) or 400 (bad chunking)."""
        try:
            body = self._read_body()
        except TimeoutError:
            timeout = self.server.limits.timeout_s
            self._refuse_request(
                ServingError(status.DEADLINE_EXCEEDED, f"The request body did not arrive within {timeout:g} s"), 408
            )
            return None
        self._reader.stop()
        return body

    def _declared_length(self) -> int:
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return 0

    def _too_large(self) -> ServingError:
        limit = self.server.limits.max_body_bytes
        return ServingError(status.RESOURCE_EXHAUSTED, f"Request body is larger than the limit of {limit} bytes")

    def _read_body(self) -> bytes | None:
        limit = self.server.limits.max_body_bytes
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked(limit)
        length = self._declared_length()
        if length <= limit:
            return self.rfile.read(length) if length else b""
        # Read and drop a body of reasonable size so that the client, still sending, gets the 413 and not a reset.
        if length <= _DRAIN_LIMIT:
            self._skip(length)
        self._refuse_request(self._too_large(), 413, close=length > _DRAIN_LIMIT)
        return None

    def _read_chunked(self, limit: int) -> bytes | None:
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                self.send_error_json(status.invalid_argument("Malformed chunked request body"), close=True)
                return None
            if size == 0:
                self.rfile.readline(1024)
                break
            total += size
            if total > _DRAIN_LIMIT:
                self._refuse_request(self._too_large(), 413)
                return None
            if total <= limit:
                parts.append(self.rfile.read(size))
            else:
                self._skip(size)  # over the limit: the rest is dropped, as for a declared length
            self.rfile.readline(1024)
        if total > limit:
            self._refuse_request(self._too_large(), 413, close=False)
            return None
        return b"".join(parts)

    def _skip(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(1 << 20, length))
            if not chunk:
                return
            length -= len(chunk)
