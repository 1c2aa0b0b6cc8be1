"""The "Report" extra link of TFX node tasks (light: imported by DAG files; the plugin registers it)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink

URL_PREFIX = "/runway"  # where the plugin's app is mounted in Airflow's API server
REPORT_XCOM_KEY = "report_url"
FAILURE_XCOM_KEY = "runway_failure"  # why a task failed: {"reason": one line, "report": page} (operators.py)


def report_url(relative_report: str) -> str:
    """URL of a report, from its path relative to RUNWAY_HOME (``reports/flights/<run>/Evaluator.html``)."""
    return f"{URL_PREFIX}/{relative_report}"


class NodeReportLink(BaseOperatorLink):
    """The task's report page (anomalies, evaluation, push), when its node wrote one."""

    name = "Report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=REPORT_XCOM_KEY)
        return str(value) if value else ""
