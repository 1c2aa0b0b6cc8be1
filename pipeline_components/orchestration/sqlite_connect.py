"""How Airflow's components open the embedded SQLite metadata database (``airflow_local.airflow_env`` names these
through ``[database] sql_alchemy_connect_args`` and ``sql_alchemy_connect_args_async``).

SQLite has one writer at a time; a writer that finds the database locked waits ``timeout`` seconds and then fails
with "database is locked". Python's default, 5 s, is shorter than the scheduler, the dag-processor, the API server
and several task processes need on a busy 2-core machine: CI saw the API server answer a trigger with HTTP 500
("Database error") after exactly 5 s. 30 s makes such a request slower instead of failed. PostgreSQL (a team's
deployment) has no such limit.
"""

from __future__ import annotations

from typing import Any

BUSY_TIMEOUT_S = 30

CONNECT_ARGS: dict[str, Any] = {"timeout": BUSY_TIMEOUT_S}  # sqlite3.connect
CONNECT_ARGS_ASYNC: dict[str, Any] = {"timeout": BUSY_TIMEOUT_S}  # aiosqlite.connect
