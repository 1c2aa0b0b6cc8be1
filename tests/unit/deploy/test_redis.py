"""The project-started Redis (``pipeline_components/deploy/redis.py``), really started: a generated password every
client needs, loopback unless told otherwise, a port kept across restarts, queued messages kept by the append-only
file, idempotent start and stop, nothing listening after ``stop``, and typed errors for a missing package or a taken
port."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pipeline_components.deploy import redis as redis_module
from pipeline_components.deploy.redis import LocalRedis, RedisServer
from pipeline_components.errors import RuntimeEnvironmentError
from pipeline_components.processes import pid_alive
from tests.helpers import missing


@pytest.fixture(scope="module")
def server_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        redis_module.find_redis_server()
    except RuntimeEnvironmentError as absent:
        missing(str(absent))
    return tmp_path_factory.mktemp("redis-unit") / "redis"


@pytest.fixture(scope="module")
def local_redis(server_root: Path) -> Iterator[LocalRedis]:
    server = LocalRedis(root=server_root)
    try:
        yield server
    finally:
        server.stop()


def _client(server: RedisServer, password: str | None) -> redis.Redis:
    # No retries: redis-py retries a refused AUTH (a ConnectionError) with backoff, seconds spent on a known answer.
    return redis.Redis(
        host=server.host, port=server.port, password=password, socket_timeout=5, retry=Retry(NoBackoff(), 0)
    )


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def test_start_is_loopback_with_a_generated_password_and_idempotent(local_redis: LocalRedis) -> None:
    server = local_redis.start()
    assert server.host == "127.0.0.1" and _listening("127.0.0.1", server.port)
    assert local_redis.password_file.stat().st_mode & 0o777 == 0o600
    password = local_redis.password_file.read_text()
    assert len(password) >= 32
    assert password not in local_redis.state_file.read_text()
    assert json.loads(local_redis.state_file.read_text())["port"] == server.port
    # The configuration carries requirepass (so the password is on no command line): owner only, in a 0700 folder.
    assert local_redis.config_file.stat().st_mode & 0o777 == 0o600
    assert local_redis.data.stat().st_mode & 0o777 == 0o700
    assert password not in Path(f"/proc/{server.pid}/cmdline").read_text()
    assert local_redis.start() == server  # a second start changes nothing: same port, same process


def test_clients_need_the_password(local_redis: LocalRedis) -> None:
    server = local_redis.start()
    with pytest.raises(redis.AuthenticationError):
        _client(server, None).ping()
    with pytest.raises(redis.AuthenticationError):
        _client(server, "guess").ping()
    assert _client(server, local_redis.password_file.read_text()).ping() is True
    assert redis.Redis.from_url(local_redis.url(), socket_timeout=5).ping() is True  # what Celery's broker gets
    assert local_redis.password_file.read_text() not in server.public_url()


def test_restart_keeps_the_port_and_the_queued_messages(local_redis: LocalRedis) -> None:
    server = local_redis.start()
    client = redis.Redis.from_url(local_redis.url(), socket_timeout=5)
    client.delete("queue")
    client.rpush("queue", "first", "second")
    local_redis.stop()
    assert not pid_alive(server.pid) and local_redis.status() is None
    assert not _listening(server.host, server.port)  # nothing listens after stop
    local_redis.stop()  # stopping a stopped server does nothing
    again = local_redis.start()
    assert again.port == server.port and again.pid != server.pid
    assert redis.Redis.from_url(local_redis.url(), socket_timeout=5).lrange("queue", 0, -1) == [b"first", b"second"]


def test_a_taken_port_is_named_not_moved(local_redis: LocalRedis) -> None:
    server = local_redis.start()
    local_redis.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the stopped server's TIME_WAIT
        squatter.bind((server.host, server.port))
        squatter.listen()
        with pytest.raises(RuntimeEnvironmentError, match=rf"127\.0\.0\.1:{server.port}.*taken by another process"):
            local_redis.start()
    assert local_redis.start().port == server.port  # free again: the same port as before


def test_it_listens_on_the_host_address_it_is_given(tmp_path: Path, server_root: Path) -> None:
    other = LocalRedis(root=tmp_path / "redis", host="127.0.0.2")
    try:
        server = other.start()
        assert server.host == "127.0.0.2" and _listening("127.0.0.2", server.port)
        assert not _listening("127.0.0.1", server.port)  # that address only, not every interface
    finally:
        other.stop()
    assert other.status() is None


def test_a_missing_package_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(redis_module, "_DEBIAN_BINARY", tmp_path / "redis-server")
    with pytest.raises(RuntimeEnvironmentError, match=r"apt-get install redis-server"):
        LocalRedis(root=tmp_path / "redis").start()
