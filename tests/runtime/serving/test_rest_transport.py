"""The REST transport's limits on real sockets, with a handler whose requests can be held open."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from pipeline_components.errors import ServingError
from pipeline_components.serving.rest_transport import LimitedHandler, LimitedHTTPServer, Limits


class _Echo(LimitedHandler):
    """Answers a POST with its body; a body of ``hold`` waits for ``release`` while it holds a request slot."""

    release = threading.Event()
    holding = threading.Event()

    def do_POST(self) -> None:
        body = self.read_body()
        if body is None:
            return
        try:
            with self.request_slot():
                if body == b"hold":
                    self.holding.set()
                    self.release.wait(30)
        except ServingError as busy:
            self.send_error_json(busy)
            return
        self.send_body(200, body)


@pytest.fixture
def server() -> Iterator[LimitedHTTPServer]:
    _Echo.release.clear()
    _Echo.holding.clear()
    limits = Limits(max_connections=8, max_active_requests=1, timeout_s=1.0, max_body_bytes=1024)
    httpd = LimitedHTTPServer(("127.0.0.1", 0), _Echo, limits=limits)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    _Echo.release.set()
    httpd.shutdown()
    httpd.server_close()


def _post(server: LimitedHTTPServer, body: bytes | list[bytes]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    try:
        connection.request("POST", "/", body=iter(body) if isinstance(body, list) else body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_request_that_finds_every_thread_busy_gets_503_after_the_timeout(server: LimitedHTTPServer) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(_post, server, b"hold")
        assert _Echo.holding.wait(30)
        status, body = _post(server, b"next")
        assert status == 503
        assert "--rest_api_num_threads" in json.loads(body)["error"]
        _Echo.release.set()
        assert held.result(timeout=30) == (200, b"hold")
    assert _post(server, b"after") == (200, b"after")


def test_a_chunked_body_over_the_limit_gets_413_and_the_connection_stays_usable(server: LimitedHTTPServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    try:
        connection.request("POST", "/", body=iter([b"x" * 1000, b"x" * 1000]), encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read()) == {"error": "Request body is larger than the limit of 1024 bytes"}
        connection.request("POST", "/", body=b"small")
        assert connection.getresponse().read() == b"small"
    finally:
        connection.close()


def test_drain_answers_the_request_in_progress_closes_idle_connections_and_accepts_no_more(
    server: LimitedHTTPServer,
) -> None:
    port = server.server_address[1]
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    idle.request("POST", "/", body=b"first")
    assert idle.getresponse().read() == b"first"  # a keep-alive connection, now waiting for its next request
    with ThreadPoolExecutor(max_workers=2) as pool:
        held = pool.submit(_post, server, b"hold")
        assert _Echo.holding.wait(30)
        draining = pool.submit(server.drain, 10.0)
        assert not draining.done()  # it waits for the request in progress ...
        _Echo.release.set()
        assert held.result(timeout=30) == (200, b"hold")  # ... which gets its whole answer
        assert draining.result(timeout=30) is True
    assert idle.sock is not None and idle.sock.recv(1) == b""  # the idle connection was closed by the server
    idle.close()
    with pytest.raises(OSError):
        _post(server, b"after")
