"""A PostgreSQL started by the project, for development, tests and the future ``runway deploy``.

``LocalPostgres(root=$RUNWAY_HOME/postgres)`` runs Debian's PostgreSQL binaries (``/usr/lib/postgresql/<version>/bin``,
package ``postgresql``; ``make setup`` installs it) as a plain process: no system service, no ``pg_ctlcluster``.

    root/
      password        the superuser's generated password (0600, owned by whoever started it): the file
                      ``RUNWAY_METADATA_PASSWORD_FILE`` names
      server.json     host, port, superuser and binaries of the cluster (no secret)
      data/           the cluster (PGDATA, 0700), its server log and its Unix socket

It listens on loopback only (``host`` says otherwise), on a free port chosen at the first start and kept while it is
free. Clients authenticate with SCRAM over TCP; the Unix socket (trusted) sits inside the 0700 data folder, so only
the cluster's own operating-system user reaches it, which is how this module creates databases.

Who runs it: PostgreSQL refuses to run as root. Run by root (CI, containers), the binaries run as Debian's own
unprivileged ``postgres`` account (the package creates it) through ``runuser``, and the data folder belongs to it;
run by anyone else, they run as that user. Every step is idempotent: ``start`` on a running cluster returns it,
``create_database`` on an existing database does nothing, ``stop`` on a stopped one does nothing.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline_components.errors import ConfigError, RuntimeEnvironmentError
from pipeline_components.ports import free_ports, port_free

SUPERUSER = "runway"
_HBA_BEGIN = "# runway: the deployment's hosts (rewritten at each start)"
SERVICE_ACCOUNT = "postgres"  # Debian's postgresql package creates it; used only when root starts the cluster
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_INSTALL = "install Debian's postgresql package (`make setup` does: apt-get install postgresql)"


def find_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` (or the folder of ``initdb`` on PATH).

    Raises:
        RuntimeEnvironmentError: PostgreSQL's server binaries are not installed.
    """
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeEnvironmentError(f"PostgreSQL's server binaries (initdb, pg_ctl) are not installed: {_INSTALL}")


@dataclass(frozen=True, kw_only=True)
class PostgresServer:
    """Where a running cluster answers, and the file that holds its superuser's password."""

    host: str
    port: int
    user: str
    password_file: Path

    def url(self, database: str) -> str:
        """``postgresql://user@host:port/database``: what ``RUNWAY_METADATA_URL`` takes (never the password)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def metadata_env(self, database: str) -> dict[str, str]:
        """The settings that point ML Metadata at ``database`` of this server (``pipeline_components.settings``)."""
        return {"RUNWAY_METADATA_URL": self.url(database), "RUNWAY_METADATA_PASSWORD_FILE": str(self.password_file)}


class LocalPostgres:
    """One PostgreSQL cluster under ``root``, started and stopped with ``pg_ctl``.

    Args:
        root: the cluster's folder (for example ``$RUNWAY_HOME/postgres``).
        host: the address it listens on (loopback unless told otherwise).
        bin_dir: PostgreSQL's binaries (default: ``find_bin_dir()``).
        port: the port to listen on (default: a free one at the first start, kept afterwards).
        netns: the command that enters the host the server runs on (``ip netns exec NS``, ``Hosts.command``),
            when ``host`` is an address of another network namespace; the server is started inside it.
        clients: networks (``10.231.7.0/24``) whose hosts may connect with the password, besides loopback.
    """

    def __init__(
        self,
        *,
        root: Path,
        host: str = "127.0.0.1",
        bin_dir: Path | None = None,
        port: int | None = None,
        netns: Sequence[str] = (),
        clients: Sequence[str] = (),
    ) -> None:
        self.root = root
        self._clients = list(clients)
        self.host = host
        self._bin_dir = bin_dir
        self._requested_port = port
        self._netns = list(netns)
        self.data = root / "data"
        self.password_file = root / "password"
        self.state_file = root / "server.json"
        self.log_file = self.data / "server.log"

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_bin_dir()
        return self._bin_dir

    def _account(self) -> pwd.struct_passwd | None:
        """The unprivileged account the server runs as when root starts it (None: the current user)."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SERVICE_ACCOUNT)
        except KeyError:
            raise RuntimeEnvironmentError(
                f"PostgreSQL cannot run as root and there is no '{SERVICE_ACCOUNT}' account to run it as: {_INSTALL}"
            ) from None

    def _run(
        self, tool: str, *args: str, check: bool = True, netns: Sequence[str] = ()
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / tool), *args]
        if self._account() is not None:
            command = ["runuser", "-u", SERVICE_ACCOUNT, "--", *command]
        command = [*netns, *command]
        # cwd: the account may not be allowed into the caller's working directory.
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.root, check=False)
        if check and done.returncode != 0:
            raise RuntimeEnvironmentError(
                f"{tool} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}"
                + (f"\nserver log: {self.log_file}" if tool == "pg_ctl" else "")
            )
        return done

    def _give_to_account(self, path: Path) -> None:
        account = self._account()
        if account is not None:
            os.chown(path, account.pw_uid, account.pw_gid)

    def _check_reachable(self) -> None:
        """The service account must be able to walk down to the cluster's folder."""
        account = self._account()
        if account is None:
            return
        for folder in [*reversed(self.root.parents), self.root]:
            if folder.exists() and not folder.stat().st_mode & 0o001:
                raise RuntimeEnvironmentError(
                    f"the '{SERVICE_ACCOUNT}' account that runs PostgreSQL cannot enter {folder} (mode "
                    f"{oct(folder.stat().st_mode & 0o777)}): put the cluster under a folder others may traverse "
                    "(RUNWAY_HOME under /tmp or /var/lib, for example), or `chmod o+x` that folder"
                )

    def initialized(self) -> bool:
        return (self.data / "PG_VERSION").is_file() and self.password_file.is_file()

    def init(self) -> None:
        """Create the cluster with a generated superuser password (nothing happens if it exists)."""
        if self.initialized():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_reachable()
        if self.data.exists():  # a half-made cluster from an interrupted init
            shutil.rmtree(self.data)
        password = secrets.token_hex(24)
        # initdb reads the password from a file its account can read; it lives only for the call.
        pwfile = self.root / ".initdb-password"
        pwfile.unlink(missing_ok=True)
        descriptor = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, password.encode())
            os.close(descriptor)
            self._give_to_account(pwfile)
            self.data.mkdir(mode=0o700)
            self._give_to_account(self.data)
            self._run(
                "initdb",
                f"--pgdata={self.data}",
                f"--username={SUPERUSER}",
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",  # the socket is inside the 0700 data folder: only the cluster's account
                "--encoding=UTF8",
                "--locale=C",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self._write_private(self.password_file, password)

    @staticmethod
    def _write_private(path: Path, text: str) -> None:
        temporary = path.with_name(path.name + ".tmp")
        temporary.unlink(missing_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        temporary.replace(path)

    def running(self) -> bool:
        return (
            self.initialized() and self._run("pg_ctl", "status", f"--pgdata={self.data}", check=False).returncode == 0
        )

    def server(self) -> PostgresServer | None:
        """The running cluster's address, or None when it is not running."""
        if not self.running() or not self.state_file.is_file():
            return None
        state = json.loads(self.state_file.read_text())
        return PostgresServer(
            host=state["host"], port=int(state["port"]), user=state["user"], password_file=self.password_file
        )

    def _port(self) -> int:
        if self._requested_port is not None:
            if not self._netns and not port_free(self.host, self._requested_port):
                raise RuntimeEnvironmentError(
                    f"cannot start PostgreSQL on {self.host}:{self._requested_port}: the port is taken; stop what "
                    f"holds it (`ss -ltnp 'sport = :{self._requested_port}'` names it)"
                )
            return self._requested_port  # a host of its own (netns): nothing else listens on its address
        if self.state_file.is_file():
            port = int(json.loads(self.state_file.read_text())["port"])
            if port_free(self.host, port):
                return port
        return free_ports(1, self.host)[0]

    def start(self) -> PostgresServer:
        """Initialize if needed and start the server on ``host`` (idempotent); wait until it accepts connections."""
        self.init()
        running = self.server()
        if running is not None:
            return running
        port = self._port()
        conf = self.data / "runway.conf"
        # Rewritten at each start; postgresql.conf includes it (listen address, port, socket inside PGDATA).
        conf.write_text(f"listen_addresses = '{self.host}'\nport = {port}\nunix_socket_directories = '{self.data}'\n")
        self._give_to_account(conf)
        self._write_hba()
        main_conf = self.data / "postgresql.conf"
        if "include_if_exists = 'runway.conf'" not in main_conf.read_text():
            with main_conf.open("a") as handle:
                handle.write("\ninclude_if_exists = 'runway.conf'\n")
        self._run(
            "pg_ctl", "start", f"--pgdata={self.data}", f"--log={self.log_file}", "--wait", "--timeout=60",
            netns=self._netns,
        )  # fmt: skip
        state = {"host": self.host, "port": port, "user": SUPERUSER, "bin_dir": str(self.bin_dir)}
        self.state_file.write_text(json.dumps(state, indent=1) + "\n")
        server = self.server()
        if server is None:
            raise RuntimeEnvironmentError(f"PostgreSQL did not stay up; see its log: {self.log_file}")
        return server

    def _write_hba(self) -> None:
        """Let ``clients`` in (password, scram-sha-256), in a block of pg_hba.conf rewritten at each start."""
        hba = self.data / "pg_hba.conf"
        text = hba.read_text().split(_HBA_BEGIN)[0].rstrip("\n") + "\n"
        if self._clients:
            lines = [f"host all all {network} scram-sha-256" for network in self._clients]
            text += "\n".join([_HBA_BEGIN, *lines, ""])
        hba.write_text(text)

    def query(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser over the cluster's Unix socket; its rows, unaligned (``|`` between columns).

        Raises:
            RuntimeEnvironmentError: the server is not running, or psql fails (its message is included).
        """
        server = self.server()
        if server is None:
            raise RuntimeEnvironmentError(f"the PostgreSQL under {self.root} is not running: start it first")
        return self._psql(server, sql, database)

    def _psql(self, server: PostgresServer, sql: str, database: str = "postgres") -> str:
        done = self._run(
            "psql", f"--host={self.data}", f"--port={server.port}", f"--username={SUPERUSER}",
            f"--dbname={database}", "--no-psqlrc", "--tuples-only", "--no-align", f"--command={sql}",
        )  # fmt: skip
        return done.stdout.strip()

    def create_database(self, name: str) -> str:
        """Create database ``name`` unless it exists; return its URL for ``RUNWAY_METADATA_URL``.

        Raises:
            ConfigError: ``name`` is not a plain lower-case identifier.
            RuntimeEnvironmentError: the server is not running.
        """
        if not _DATABASE_NAME.match(name):
            raise ConfigError(f"database name {name!r}: use lower-case letters, digits and '_' (at most 63)")
        server = self.server()
        if server is None:
            raise RuntimeEnvironmentError(f"the PostgreSQL under {self.root} is not running: start it first")
        if self._psql(server, f"SELECT 1 FROM pg_database WHERE datname = '{name}'") != "1":
            self._psql(server, f'CREATE DATABASE "{name}"')
        return server.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended); nothing happens when it is not running."""
        if self.running():
            self._run("pg_ctl", "stop", f"--pgdata={self.data}", "--mode=fast", "--wait", "--timeout=60")
