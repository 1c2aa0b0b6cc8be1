"""A trivial task for the CeleryExecutor test (``test_celery.py``): ``airflow celery worker`` imports this module
through Celery's ``imports`` setting, so the provider's own Celery app, configured from ``celery_settings(...)``,
registers it beside Airflow's task. It answers with the worker host that ran it."""

from __future__ import annotations

import json
import os
import sys

from airflow.providers.celery.executors.celery_executor_utils import app


@app.task(name="runway_probe.where")
def where(token: str) -> dict[str, str]:
    return {"token": token, "host": os.environ["RUNWAY_PROBE_HOST"]}


def main() -> None:
    """``python -m tests.unit.deploy.celery_probe IDLE_QUEUE QUEUE``: send a probe to IDLE_QUEUE (no worker consumes
    it: it stays queued), then one to QUEUE and wait for its result; print both as JSON."""
    idle_queue, queue = sys.argv[1:3]
    queued = where.apply_async(args=["queued"], queue=idle_queue)
    answered = where.apply_async(args=["answered"], queue=queue)
    print(json.dumps({"queued": queued.id, "answered": answered.id, "result": answered.get(timeout=90)}))


if __name__ == "__main__":
    main()
