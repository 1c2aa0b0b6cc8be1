"""Per-machine settings, read once from environment variables.

Everything physical (where data, artifacts, metadata and models live; which interpreter runs TFX) is decided
here and nowhere else. The defaults are the embedded, single-machine layout under ``var/`` in the checkout.

| variable                 | default                       | what                                        |
|--------------------------|-------------------------------|---------------------------------------------|
| ``RUNWAY_HOME``          | ``<checkout>/var``            | root of every default below                 |
| ``RUNWAY_DATA_DIR``      | ``$RUNWAY_HOME/data``         | prepared spans, one folder per dataset      |
| ``RUNWAY_PIPELINES_DIR`` | ``$RUNWAY_HOME/pipelines``    | TFX pipeline roots (artifacts)              |
| ``RUNWAY_METADATA_DIR``  | ``$RUNWAY_HOME/metadata``     | ML Metadata SQLite files, one per pipeline  |
| ``RUNWAY_IR_DIR``        | ``$RUNWAY_HOME/ir``           | compiled TFX IR, one JSON file per pipeline |
| ``RUNWAY_MODEL_STORE``   | ``$RUNWAY_HOME/models``       | TF Serving model base paths                 |
| ``RUNWAY_CONFIG_DIR``    | ``<checkout>/configs``        | pipeline configuration files                |
| ``RUNWAY_RUNTIME_PYTHON``| ``<checkout>/.venv-runtime/bin/python`` | interpreter of the runtime env    |
| ``RUNWAY_METADATA_URL``  | unset: SQLite files          | ML Metadata on PostgreSQL, every pipeline:  |
|                          |                               | ``postgresql://user@host:port/dbname``      |
| ``RUNWAY_METADATA_PASSWORD_FILE`` | unset               | the file holding that user's password       |

The metadata password is never part of the URL (refused there) nor of these settings: the URL names the database, the
file is read only when a store is opened (``pipeline_components.metadata.connection``), so neither the compiled IR
nor a log nor ``as_env`` carries it. See docs/deployment.md#ml-metadata-on-postgresql.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pipeline_components.errors import ConfigError

CHECKOUT = Path(__file__).resolve().parent.parent
_SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})


@dataclass(frozen=True, kw_only=True)
class PostgresMetadata:
    """ML Metadata of every pipeline in one PostgreSQL database (``RUNWAY_METADATA_URL``)."""

    host: str
    port: int
    user: str
    dbname: str
    sslmode: str | None = None
    password_file: Path | None = None

    @classmethod
    def from_url(cls, url: str, password_file: Path | None) -> PostgresMetadata:
        """Parse ``postgresql://user@host[:port]/dbname[?sslmode=...]``.

        Raises:
            ConfigError: not such a URL, or it carries a password.
        """
        parts = urlsplit(url)
        # Shown in messages without the password, whatever the URL holds.
        shown = (f"{parts.username}@" if parts.username else "") + parts.netloc.rsplit("@", 1)[-1]
        what = f"RUNWAY_METADATA_URL={parts._replace(netloc=shown).geturl()!r}"
        if parts.scheme not in ("postgresql", "postgres"):
            raise ConfigError(f"{what}: use postgresql://USER@HOST:PORT/DBNAME (unset, ML Metadata stays SQLite)")
        if parts.password is not None:
            raise ConfigError(
                f"{what} carries a password: remove it from the URL and put it in a file (mode 0600) named by "
                "RUNWAY_METADATA_PASSWORD_FILE, so that no compiled IR, log or process list shows it"
            )
        dbname = parts.path.lstrip("/")
        if not parts.hostname or not parts.username or not dbname or "/" in dbname:
            raise ConfigError(f"{what}: it needs a user, a host and a database: postgresql://USER@HOST:PORT/DBNAME")
        query = parse_qs(parts.query)
        if set(query) - {"sslmode"} or not set(query.get("sslmode", ["prefer"])) <= _SSL_MODES:
            raise ConfigError(f"{what}: the only option is sslmode (one of {', '.join(sorted(_SSL_MODES))})")
        try:
            port = parts.port or 5432
        except ValueError as error:
            raise ConfigError(f"{what}: {error}") from None
        sslmode = query["sslmode"][0] if "sslmode" in query else None
        return cls(
            host=parts.hostname, port=port, user=parts.username, dbname=dbname, sslmode=sslmode,
            password_file=password_file,
        )  # fmt: skip

    def url(self) -> str:
        """The URL again (no password: there is none to show)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}" + (
            f"?sslmode={self.sslmode}" if self.sslmode else ""
        )

    def password(self) -> str | None:
        """The password from ``password_file`` (None without one), read when a store is opened.

        Raises:
            ConfigError: the file is missing or unreadable.
        """
        if self.password_file is None:
            return None
        try:
            return self.password_file.read_text().strip()
        except OSError as error:
            raise ConfigError(
                f"RUNWAY_METADATA_PASSWORD_FILE={self.password_file}: cannot read the ML Metadata password "
                f"({error.strerror}); point it at the file that holds the password of {self.url()}"
            ) from None


@dataclass(frozen=True, kw_only=True)
class Settings:
    home: Path
    data_dir: Path
    pipelines_dir: Path
    metadata_dir: Path
    ir_dir: Path
    model_store: Path
    config_dir: Path
    runtime_python: Path
    # None: each pipeline's ML Metadata is the SQLite file metadata_path(name) (the embedded default).
    metadata_postgres: PostgresMetadata | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def path(name: str, default: Path) -> Path:
            value = env.get(name)
            return Path(value).expanduser().resolve() if value else default

        home = path("RUNWAY_HOME", CHECKOUT / "var")
        metadata_url = env.get("RUNWAY_METADATA_URL")
        password_file = env.get("RUNWAY_METADATA_PASSWORD_FILE")
        postgres = (
            PostgresMetadata.from_url(metadata_url, Path(password_file).expanduser() if password_file else None)
            if metadata_url
            else None
        )
        return cls(
            home=home,
            data_dir=path("RUNWAY_DATA_DIR", home / "data"),
            pipelines_dir=path("RUNWAY_PIPELINES_DIR", home / "pipelines"),
            metadata_dir=path("RUNWAY_METADATA_DIR", home / "metadata"),
            ir_dir=path("RUNWAY_IR_DIR", home / "ir"),
            model_store=path("RUNWAY_MODEL_STORE", home / "models"),
            config_dir=path("RUNWAY_CONFIG_DIR", CHECKOUT / "configs"),
            runtime_python=path("RUNWAY_RUNTIME_PYTHON", CHECKOUT / ".venv-runtime" / "bin" / "python"),
            metadata_postgres=postgres,
        )

    def as_env(self) -> dict[str, str]:
        """The settings as environment variables, for a process that must see the same layout."""
        return self.metadata_env() | {
            "RUNWAY_HOME": str(self.home),
            "RUNWAY_DATA_DIR": str(self.data_dir),
            "RUNWAY_PIPELINES_DIR": str(self.pipelines_dir),
            "RUNWAY_METADATA_DIR": str(self.metadata_dir),
            "RUNWAY_IR_DIR": str(self.ir_dir),
            "RUNWAY_MODEL_STORE": str(self.model_store),
            "RUNWAY_CONFIG_DIR": str(self.config_dir),
            "RUNWAY_RUNTIME_PYTHON": str(self.runtime_python),
        }

    def pipeline_root(self, pipeline_name: str) -> Path:
        return self.pipelines_dir / pipeline_name

    def metadata_path(self, pipeline_name: str) -> Path:
        return self.metadata_dir / f"{pipeline_name}.sqlite"

    def metadata_env(self) -> dict[str, str]:
        """The ML Metadata settings as environment variables (none for the SQLite default; never the password)."""
        postgres = self.metadata_postgres
        if postgres is None:
            return {}
        env = {"RUNWAY_METADATA_URL": postgres.url()}
        if postgres.password_file is not None:
            env["RUNWAY_METADATA_PASSWORD_FILE"] = str(postgres.password_file)
        return env

    def metadata_location(self, pipeline_name: str) -> str:
        """Where ``pipeline_name``'s ML Metadata lives, for messages: the SQLite file or the database's URL."""
        if self.metadata_postgres is not None:
            return self.metadata_postgres.url()
        return str(self.metadata_path(pipeline_name))

    def ir_path(self, pipeline_name: str) -> Path:
        return self.ir_dir / f"{pipeline_name}.json"
