"""A Redis started by the project: the Celery broker of a deployment (``runway deploy``, issue 18), and its tests.

``LocalRedis(root=$RUNWAY_HOME/redis)`` runs Debian's ``redis-server`` (package ``redis-server``; ``make setup``
installs it) as a plain process: no system service.

    root/
      password        the generated password (0600, owned by whoever started it): every client must AUTH with it
      server.json     host, port and binary (no secret)
      data/           0700: the append-only file, the server's log, its pid file and its configuration (``redis.conf``,
                      0600, rewritten at each start: it carries ``requirepass``, so the password never appears on a
                      command line)

It listens on loopback only (``host`` says otherwise), on a port chosen free at the first start and kept: a Celery
deployment's settings name it, so a restart that finds it taken fails and says so rather than moving. The data is
append-only (``appendonly yes``, fsync every second), so a restart keeps the queued messages. Every step is
idempotent: ``start`` on a running server returns it, ``stop`` on a stopped one does nothing.

Run by root (CI, containers) it runs as root, as the caller: unlike PostgreSQL, Redis does not refuse it, and its
files stay the caller's. Standard library only: both environments import it.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pipeline_components.durable import atomic_write
from pipeline_components.errors import ConfigError, RuntimeEnvironmentError
from pipeline_components.ports import free_ports, port_free
from pipeline_components.processes import command_line, log_tail, pid_alive, stop_pid, wait_for

_INSTALL = "install Debian's redis-server package (`make setup` does: apt-get install redis-server)"
_START_TIMEOUT_S = 20.0
_DEBIAN_BINARY = Path("/usr/bin/redis-server")  # also when PATH lacks /usr/bin (a service manager's)


def find_redis_server() -> Path:
    """The ``redis-server`` binary (on PATH, or Debian's ``/usr/bin/redis-server``).

    Raises:
        RuntimeEnvironmentError: Redis is not installed; the message says how to install it.
    """
    found = shutil.which("redis-server") or (str(_DEBIAN_BINARY) if _DEBIAN_BINARY.is_file() else None)
    if found is None:
        raise RuntimeEnvironmentError(f"Redis (redis-server) is not installed: {_INSTALL}")
    return Path(found)


@dataclass(frozen=True, kw_only=True)
class RedisServer:
    """Where a running Redis answers, its process, and the file that holds its password."""

    host: str
    port: int
    pid: int
    password_file: Path

    def url(self, database: int = 0) -> str:
        """``redis://:PASSWORD@host:port/database``, the password read from its file now.

        A secret: hand it to a client, never print or log it (``public_url`` is the printable form).
        """
        return f"redis://:{quote(self.password_file.read_text(), safe='')}@{self.host}:{self.port}/{database}"

    def public_url(self, database: int = 0) -> str:
        """The URL without the password, for messages and logs."""
        return f"redis://{self.host}:{self.port}/{database}"


class LocalRedis:
    """One Redis server under ``root``, started as a daemon and stopped with SIGTERM (which writes its data first).

    Args:
        root: the server's folder (for example ``$RUNWAY_HOME/redis``).
        host: the address it listens on (loopback unless told otherwise).
        port: the port to use at the first start (default: a free one); kept afterwards.
        binary: the ``redis-server`` binary (default: ``find_redis_server()``).
        netns: the command that enters the host the server runs on (``ip netns exec NS``, ``Hosts.command``),
            when ``host`` is an address of another network namespace; the server is started inside it.
    """

    def __init__(
        self,
        *,
        root: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        binary: Path | None = None,
        netns: Sequence[str] = (),
    ) -> None:
        if port is not None and not 0 < port < 65536:
            raise ConfigError(f"Redis port {port}: use a TCP port between 1 and 65535")
        self.password_file = root / "password"
        self.state_file = root / "server.json"
        self.data = root / "data"
        self.config_file = self.data / "redis.conf"
        self.pid_file = self.data / "redis.pid"
        self.log_file = self.data / "redis.log"
        self.root = root
        self.host = host
        self._requested_port = port
        self._binary = binary
        self._netns = list(netns)

    @property
    def binary(self) -> Path:
        if self._binary is None:
            self._binary = find_redis_server()
        return self._binary

    def _password(self) -> str:
        """The password, generated into its 0600 file at the first call."""
        if not self.password_file.is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write(self.password_file, secrets.token_hex(24), mode=0o600)
        return self.password_file.read_text()

    def _state(self) -> dict[str, object] | None:
        return json.loads(self.state_file.read_text()) if self.state_file.is_file() else None

    def _pid(self) -> int | None:
        """The server's pid while it runs (a reused pid that is not redis-server does not count)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) and "redis-server" in command_line(pid) else None

    def status(self) -> RedisServer | None:
        """The running server, or None when it is not running."""
        pid = self._pid()
        state = self._state()
        if pid is None or state is None:
            return None
        return RedisServer(
            host=str(state["host"]), port=int(str(state["port"])), pid=pid, password_file=self.password_file
        )

    def _port(self) -> int:
        """The kept port (or the requested one, at the first start), checked free; else a free one."""
        state = self._state()
        port = int(str(state["port"])) if state is not None else self._requested_port
        if port is None:
            return free_ports(1, self.host)[0]
        if not self._netns and not port_free(self.host, port):
            kept = "" if state is None else f" (kept in {self.state_file} since the first start)"
            raise RuntimeEnvironmentError(
                f"cannot start Redis on {self.host}:{port}{kept}: the port is taken by another process. Stop that "
                f"process (`ss -ltnp 'sport = :{port}'` names it), or delete {self.state_file} to choose a new free "
                "port, then update the settings that name the old one (runway deploy's broker URL)"
            )
        return port

    def start(self) -> RedisServer:
        """Start the server on ``host`` (idempotent) and wait until it answers with its password.

        Raises:
            RuntimeEnvironmentError: redis-server is not installed, the port is taken, or the server did not come up
                (the message carries the end of its log).
        """
        running = self.status()
        if running is not None:
            return running
        binary = self.binary
        password = self._password()
        self.data.mkdir(parents=True, exist_ok=True)
        self.data.chmod(0o700)
        port = self._port()
        atomic_write(self.config_file, self._config(port=port, password=password), mode=0o600)
        state = {"host": self.host, "port": port, "binary": str(binary)}
        self.state_file.write_text(json.dumps(state, indent=1) + "\n")
        self.pid_file.unlink(missing_ok=True)
        # daemonize: the server outlives the command that started it, as pg_ctl's does; cwd: its files are in data/.
        done = subprocess.run(
            [*self._netns, str(binary), str(self.config_file)],
            cwd=self.data,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeEnvironmentError(
                f"redis-server failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}\n"
                f"its log ({self.log_file}):\n{log_tail(self.log_file)}"
            )
        if not wait_for(lambda: _answers(self.host, port, password), timeout=_START_TIMEOUT_S, interval=0.05):
            pid = self._pid()
            stop_pid(pid)
            raise RuntimeEnvironmentError(
                f"Redis did not answer on {self.host}:{port} within {_START_TIMEOUT_S:.0f} s; "
                f"its log ({self.log_file}):\n{log_tail(self.log_file)}"
            )
        server = self.status()
        if server is None:
            raise RuntimeEnvironmentError(
                f"Redis did not stay up; its log ({self.log_file}):\n{log_tail(self.log_file)}"
            )
        return server

    def _config(self, *, port: int, password: str) -> str:
        return "\n".join([
            f"bind {self.host}",
            f"port {port}",
            "protected-mode yes",
            f'requirepass "{password}"',  # hex: nothing to escape
            "daemonize yes",
            f'pidfile "{self.pid_file}"',
            f'logfile "{self.log_file}"',
            f'dir "{self.data}"',
            # Queued Celery messages survive a restart: every write is in the append-only file, fsynced each second
            # (SIGTERM flushes it); no periodic snapshots besides.
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "databases 16",
            "",
        ])  # fmt: skip

    def url(self, database: int = 0) -> str:
        """The running server's URL with its password, for clients (a secret: never print or log it).

        Raises:
            RuntimeEnvironmentError: the server is not running.
        """
        server = self.status()
        if server is None:
            raise RuntimeEnvironmentError(f"the Redis under {self.root} is not running: start it first")
        return server.url(database)

    def stop(self) -> None:
        """Stop the server (SIGTERM: it flushes the append-only file, then exits); nothing happens when it is not
        running. Returns once the process is gone."""
        stop_pid(self._pid(), timeout_s=30.0)


def _answers(host: str, port: int, password: str) -> bool:
    """Whether Redis at ``host:port`` accepts ``password`` and answers PING (RESP by hand: standard library only)."""
    request = b"".join(
        b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(word), word) for word in words)
        for words in ([b"AUTH", password.encode()], [b"PING"])
    )
    try:
        with socket.create_connection((host, port), timeout=1.0) as connection:
            connection.sendall(request)
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = connection.recv(256)
                if not chunk:
                    break
                answer += chunk
    except OSError:
        return False
    return answer == b"+OK\r\n+PONG\r\n"
