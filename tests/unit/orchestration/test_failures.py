"""Failures that cannot succeed on a retry fail their task at once, and each failed task says why, in one line."""

from __future__ import annotations

import csv
import json
import shlex
import shutil
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from pipeline_components.boundary import EXIT_NOT_RETRYABLE, RESULT_PREFIX
from pipeline_components.cli.output import print_summary
from pipeline_components.orchestration.failures import failure_lines
from pipeline_components.orchestration.links import FAILURE_XCOM_KEY
from pipeline_components.orchestration.operators import CheckRunParametersOperator, TfxNodeOperator
from pipeline_components.settings import Settings
from tests.conftest import CONFIGS


class TaskInstance:
    """What an operator's context["ti"] offers the operators here: XCom pushes, recorded."""

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, *, key: str, value: Any) -> None:
        self.xcoms[key] = value


def _runtime_that_exits(tmp_path: Path, code: int, message: str) -> Path:
    """An interpreter standing in for the runtime's: runs no TFX node, exits as a node does (boundary.py)."""
    script = tmp_path / "runtime-python"
    result = RESULT_PREFIX + json.dumps({"node": "GreatExpectationsValidator", "status": "failed", "reason": message})
    script.write_text(
        textwrap.dedent(f"""\
            #!/bin/sh
            echo "loading the suite"
            echo {shlex.quote(result)}
            echo {shlex.quote("error: " + message)} >&2
            exit {code}
            """)
    )
    script.chmod(0o755)
    return script


@pytest.mark.parametrize(
    ("code", "retried"),
    [
        pytest.param(EXIT_NOT_RETRYABLE, False, id="configuration-or-input"),
        pytest.param(1, True, id="anything-else"),
    ],
)
def test_a_node_that_cannot_succeed_on_a_retry_is_not_retried(
    tmp_path: Path, isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch, code: int, retried: bool
) -> None:
    message = "the expectation suite /configs/expectations/x.json does not exist"
    monkeypatch.setenv("RUNWAY_RUNTIME_PYTHON", str(_runtime_that_exits(tmp_path, code, message)))
    monkeypatch.setenv("RUNWAY_WARM_RUNTIME", "off")  # a cold process: the stand-in interpreter itself
    operator = TfxNodeOperator(
        task_id="GreatExpectationsValidator", ir_path="x.json", node_id="GreatExpectationsValidator"
    )
    ti = TaskInstance()
    with pytest.raises(AirflowException) as failed:
        operator.execute({"run_id": "manual__1", "params": {}, "ti": ti})
    # AirflowFailException fails the task without using its retries; a plain AirflowException is retried.
    assert isinstance(failed.value, AirflowFailException) is not retried
    assert message in str(failed.value)
    assert message in ti.xcoms[FAILURE_XCOM_KEY]["reason"]


def test_check_params_refuses_a_span_that_does_not_fit_naming_the_column(
    tmp_path: Path, isolated_settings: Settings
) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS / "schemas" / "penguins", configs / "schemas" / "penguins")
    shutil.copytree(CONFIGS / "expectations", configs / "expectations")
    shutil.copy(CONFIGS / "penguins.yaml", configs / "penguins.yaml")
    span = isolated_settings.data_dir / "penguins" / "span-2009" / "penguins.csv"
    span.parent.mkdir(parents=True)
    with span.open("w", newline="") as handle:  # a real row of 2009 without its `sex` column
        writer = csv.writer(handle)
        writer.writerow(["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "island", "species"])
        writer.writerow(["50.5", "15.9", "225.0", "5400.0", "Biscoe", "2"])
    operator = CheckRunParametersOperator(task_id="check_params", config_path=str(configs / "penguins.yaml"))
    ti = TaskInstance()
    with pytest.raises(AirflowFailException) as refused:
        operator.execute({"params": {}, "ti": ti})
    assert "column 'sex' (features.categorical) is missing from span-2009/penguins.csv" in str(refused.value)
    assert ti.xcoms[FAILURE_XCOM_KEY]["reason"].startswith("penguins, span 2009: column 'sex' (features.categorical)")


def _airflow_database(path: Path, rows: list[tuple[str, str]]) -> None:
    """The columns of Airflow's ``xcom`` table that runway reads, with values stored as Airflow stores them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE xcom (dag_id TEXT, run_id TEXT, task_id TEXT, map_index INT, key TEXT, value)")
        connection.executemany(
            "INSERT INTO xcom VALUES ('d', 'r', ?, -1, ?, ?)", [(task, FAILURE_XCOM_KEY, value) for task, value in rows]
        )


def test_the_summary_gives_each_failed_task_its_reason_and_report(
    isolated_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    report = "reports/p/r/DeliveryValidator.html"
    _airflow_database(
        isolated_settings.home / "airflow" / "airflow.db",
        [
            (
                "DeliveryValidator",
                json.dumps({"reason": "DeliveryValidator: span 7: 1 of 3 checks failed", "report": report}),
            )
        ],
    )
    tasks = [
        {"task_id": "check_params", "state": "success", "try_number": 1, "seconds": 0.5},
        {"task_id": "DeliveryValidator", "state": "failed", "try_number": 1, "seconds": 1.0},
        {"task_id": "Trainer", "state": "failed", "try_number": 3, "seconds": 9.0},
        {"task_id": "Pusher", "state": "upstream_failed", "try_number": 0, "seconds": None},
    ]
    failures = failure_lines(isolated_settings, "d", "r", tasks)
    assert failures["DeliveryValidator"]["report"] == str(isolated_settings.home / report)
    log = isolated_settings.home / "airflow" / "logs" / "dag_id=d" / "run_id=r" / "task_id=Trainer" / "attempt=3.log"
    assert failures["Trainer"]["report"] == str(log)  # no page: the task's own log
    assert set(failures) == {"DeliveryValidator", "Trainer"}
    print_summary({"run_id": "r", "dag_id": "d", "tasks": tasks, "failures": failures, "metadata": {"error": "-"}})
    out = capsys.readouterr().out
    assert "Failed: DeliveryValidator: span 7: 1 of 3 checks failed\n" in out
    assert f"  full report: {isolated_settings.home / report}\n" in out
    assert "Failed: Trainer (after 3 tries): failed without a recorded reason" in out


def test_the_summary_says_which_spans_the_run_left_out(capsys: pytest.CaptureFixture[str]) -> None:
    summary = {
        "run_id": "r",
        "dag_id": "taxi_pipeline",
        "pipeline": "taxi",
        "tasks": [],
        "spans_present": [2012, 2013, 2014, 2015],
        "metadata": {
            "spans": {"ingested": [2015], "training_window": [2014, 2015]},
            "ingested_so_far": [2013, 2014, 2015],
        },
    }
    print_summary(summary)
    out = capsys.readouterr().out
    assert "Spans: ingested [2015], training window [2014, 2015]\n" in out
    assert (
        "Spans left out: [2013] ingested, older than the training window of 2; [2012] present but never ingested "
        "(`runway run taxi --history` takes them in, oldest first)"
    ) in out
