"""The operator's Airflow, for real: a local serving fleet, Airflow's three components, and Chromium.

One stack per module (minutes to start and to run the pipeline once): penguins compiled to train in seconds, a
2-instance fleet behind nginx in the test's RUNWAY_HOME (the rollout reaches it), and Airflow with two
SimpleAuthManager users: ``operator`` (admin) and ``watcher`` (viewer).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline_components.fleet.nginx import find_nginx
from pipeline_components.settings import CHECKOUT, Settings
from tests.airflow_stack import AirflowStack, airflow_stack
from tests.browser.browser import Browser, chromium
from tests.fleet.fixtures import fleet_port_args
from tests.helpers import check, missing, runway

PIPELINE = "penguins"
# Seconds of training on 3 study years, a gate any such model passes, no on-device variants (tests/runtime covers
# them): the UI is under test here, not the model.
FAST = {
    "model.train_steps": "60",
    "model.eval_steps": "5",
    "evaluation.lower_bound": "0.3",
    "evaluation.max_regression": "1.0",
    "evaluation.max_baseline_drop": "1.0",
    "tflite.variants": "[]",
}
USERS = {"operator": "admin", "watcher": "viewer"}


@dataclass
class OperatorUi:
    settings: Settings
    airflow: AirflowStack
    shots: Path | None  # docs/screenshots with RUNWAY_SCREENSHOTS=1, else none are written

    def compile(self, **overrides: str) -> None:
        compile_pipeline(self.settings, overrides)

    @contextmanager
    def browser(self, user: str) -> Iterator[Browser]:
        """Chromium, signed in as ``user``."""
        with chromium(shots=self.shots) as browser:
            browser.login(self.airflow.base, user, self.airflow.passwords[user])
            yield browser


def compile_pipeline(settings: Settings, overrides: dict[str, str]) -> None:
    """Compile the pipeline with ``FAST`` and ``overrides``; the DAG processor picks the new IR up."""
    sets = [arg for key, value in {**FAST, **overrides}.items() for arg in ("--set", f"{key}={value}")]
    check(runway(settings, "compile", PIPELINE, *sets))


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorUi]:
    home = tmp_path_factory.mktemp("browser-home")
    settings = Settings.from_env({"RUNWAY_HOME": str(home)})
    if not settings.runtime_python.exists():
        missing("the runtime environment is missing (make setup)")
    try:
        find_nginx()
    except Exception as error:
        missing(str(error))
    patch = pytest.MonkeyPatch()
    patch.setenv("RUNWAY_WARM_IDLE_TIMEOUT", "120")  # the warm runtime the runs start stops soon after them
    shots = CHECKOUT / "docs" / "screenshots" if os.environ.get("RUNWAY_SCREENSHOTS") == "1" else None
    check(runway(settings, "data", "prepare", PIPELINE))
    check(runway(settings, "fleet", "up", "--instances", "2", *fleet_port_args(2)))
    try:
        compile_pipeline(settings, {})
        with airflow_stack(settings, users=USERS, dag_id=f"{PIPELINE}_pipeline") as airflow:
            yield OperatorUi(settings, airflow, shots)
    finally:
        runway(settings, "fleet", "down")
        patch.undo()


@pytest.fixture(scope="module")
def operator(ui: OperatorUi) -> Iterator[Browser]:
    """Chromium, signed in as the operator (an admin: may trigger, may approve)."""
    with ui.browser("operator") as browser:
        yield browser
