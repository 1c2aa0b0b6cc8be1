"""Helpers for tests that drive the real runtime environment and Airflow (slow; marked)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.settings import CHECKOUT, Settings

RUNWAY = [sys.executable, "-m", "pipeline_components.cli"]
# The TFX nodes of every pipeline built by create_pipeline(...), i.e. the tasks of its DAG besides check_params.
PIPELINE_NODES = frozenset({
    "CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "Transform", "Trainer",
    "latest_blessed_model_resolver", "Evaluator", "ModelInspector", "InfraValidator", "Pusher",
    "GreatExpectationsValidator", "DriftSkewValidator", "DeliveryValidator",  # the data gate beside ExampleValidator
    "trusted_examples_resolver",  # the Evaluator's trusted set (docs/models.md)
    # Only where the configuration lists tflite.variants (both shipped configurations do): docs/tflite.md.
    "TFLiteVariants", "TFLitePublisher",
})  # fmt: skip
# The fleet rollout after the Pusher (serving.rollout: true; docs/fleet.md): task id -> its upstream task ids. With no
# fleet running (every e2e test) the first step skips and the rest follow it.
_STEPS = [
    "rollout.load",
    "rollout.wait_available",
    "rollout.label_canary",
    "rollout.verify",
    "rollout.promote",
    "rollout.retire",
]
ROLLOUT_TASKS = {
    **{step: [upstream] for step, upstream in zip(_STEPS, ["Pusher", *_STEPS[:-1]], strict=True)},
    "rollout.rollback_on_failure": sorted(_STEPS),
}  # fmt: skip


def missing(what: str) -> None:
    """A real component this test needs is not here: skip on a laptop, fail where it must be (CI).

    ``.ci/run`` installs every component the suite uses (``make setup``: both environments and nginx) and sets
    ``RUNWAY_REQUIRE_ALL=1``, so there a missing component is a broken setup, not a reason to pass quietly.
    """
    if os.environ.get("RUNWAY_REQUIRE_ALL") == "1":
        pytest.fail(f"{what} (RUNWAY_REQUIRE_ALL=1: .ci/run installs it, so this is a broken setup)")
    pytest.skip(what)


def require_nginx() -> str:
    """The nginx binary, or ``missing(...)``."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None)
    if binary is None:
        missing("nginx is not installed (make setup installs it: apt-get install nginx)")
    assert binary is not None
    return binary


def runtime_available(settings: Settings) -> bool:
    return settings.runtime_python.exists()


def runway(settings: Settings, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run the `runway` CLI as a user would, with ``settings`` as its environment."""
    env = {**os.environ, **settings.as_env()}
    return subprocess.run([*RUNWAY, *args], env=env, cwd=CHECKOUT, capture_output=True, text=True, timeout=timeout)


def check(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout[-6000:]}\nstderr:\n{result.stderr[-6000:]}"
    )
    return result.stdout


def latest_summary(settings: Settings, pipeline: str) -> dict[str, Any]:
    runs = sorted((settings.home / "runs" / pipeline).glob("*.json"))
    assert runs, f"no run summary under {settings.home / 'runs' / pipeline}"
    return json.loads(runs[-1].read_text())


def runtime_json(settings: Settings, *args: str) -> Any:
    env = {**os.environ, **settings.as_env(), "TF_CPP_MIN_LOG_LEVEL": "2", "RUNWAY_LOG_LEVEL": "WARNING"}
    result = subprocess.run(
        [str(settings.runtime_python), "-m", "pipeline_components.runtime", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def model_store_versions(settings: Settings, model_name: str) -> list[Path]:
    base = settings.model_store / model_name
    return sorted(p for p in base.iterdir() if p.name.isdigit()) if base.is_dir() else []


def overlapping(tasks: list[dict[str, Any]], names: list[str]) -> list[tuple[str, str]]:
    """Pairs among ``names`` whose runs overlapped in time (tasks as Airflow reports them: ISO start and end)."""
    from datetime import datetime

    spans = {
        t["task_id"]: (datetime.fromisoformat(t["start_date"]), datetime.fromisoformat(t["end_date"]))
        for t in tasks
        if t.get("start_date") and t.get("end_date")
    }
    return [
        (a, b)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        if spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]
    ]


def listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp{,6} writes them) with a socket listening on ``port``.

    ``0100007F`` is 127.0.0.1; ``00000000`` (0.0.0.0) or an all-zero IPv6 address would be every interface.
    """
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found
