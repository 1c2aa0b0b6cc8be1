"""Where ML Metadata lives is a setting: ``RUNWAY_METADATA_URL`` (PostgreSQL, every pipeline) or the SQLite files.
The password is a file's, never the URL's, and `runway run` compiles again when the store changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline_components.cli.commands.pipelines import _needs_compile
from pipeline_components.errors import ConfigError
from pipeline_components.settings import Settings

URL = "postgresql://mlmd@db.internal:5433/mlmd"


def test_sqlite_stays_the_default(tmp_path: Path) -> None:
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path)})
    assert settings.metadata_postgres is None
    assert settings.metadata_location("flights") == str(tmp_path / "metadata" / "flights.sqlite")
    assert "RUNWAY_METADATA_URL" not in settings.as_env()


def test_the_url_names_the_store_of_every_pipeline_and_travels_without_the_password(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("hunter2-but-longer\n")
    settings = Settings.from_env({"RUNWAY_METADATA_URL": URL, "RUNWAY_METADATA_PASSWORD_FILE": str(password)})
    postgres = settings.metadata_postgres
    assert postgres is not None
    assert (postgres.host, postgres.port, postgres.user, postgres.dbname) == ("db.internal", 5433, "mlmd", "mlmd")
    assert settings.metadata_location("flights") == settings.metadata_location("penguins") == URL
    assert postgres.password() == "hunter2-but-longer"  # read when a store is opened
    env = settings.as_env()
    assert env["RUNWAY_METADATA_URL"] == URL and env["RUNWAY_METADATA_PASSWORD_FILE"] == str(password)
    assert "hunter2" not in json.dumps(env)
    assert Settings.from_env(env) == settings


@pytest.mark.parametrize(
    ("url", "says"),
    [
        pytest.param("postgresql://mlmd:hunter2@db/mlmd", "carries a password", id="password-in-url"),
        pytest.param("mysql://mlmd@db/mlmd", "use postgresql://", id="not-postgresql"),
        pytest.param("postgresql://db/mlmd", "needs a user, a host and a database", id="no-user"),
        pytest.param("postgresql://mlmd@db/", "needs a user, a host and a database", id="no-database"),
        pytest.param("postgresql://mlmd@db/mlmd?host=/tmp", "the only option is sslmode", id="other-option"),
    ],
)
def test_a_wrong_url_is_refused_saying_what_to_do(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as refused:
        Settings.from_env({"RUNWAY_METADATA_URL": url})
    assert "hunter2" not in str(refused.value)


def test_an_unreadable_password_file_is_named(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"RUNWAY_METADATA_URL": URL, "RUNWAY_METADATA_PASSWORD_FILE": str(tmp_path / "absent")}
    )
    assert settings.metadata_postgres is not None
    with pytest.raises(ConfigError, match=r"RUNWAY_METADATA_PASSWORD_FILE=.*absent: cannot read"):
        settings.metadata_postgres.password()


def test_run_compiles_again_when_the_store_changes(tmp_path: Path) -> None:
    sqlite = Settings.from_env({"RUNWAY_HOME": str(tmp_path)})
    postgres = Settings.from_env({"RUNWAY_HOME": str(tmp_path), "RUNWAY_METADATA_URL": URL})
    ir = sqlite.ir_path("flights")
    ir.parent.mkdir(parents=True)
    ir.write_text(json.dumps({"runway": {"overrides": {}}}))  # compiled before the store was recorded: SQLite
    assert not _needs_compile(sqlite, "flights", {})
    assert _needs_compile(postgres, "flights", {})
    ir.write_text(json.dumps({"runway": {"overrides": {}, "metadata": URL}}))
    assert not _needs_compile(postgres, "flights", {})
    assert _needs_compile(sqlite, "flights", {})
