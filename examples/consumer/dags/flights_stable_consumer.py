"""Example downstream Airflow DAG: runs once each time a new flights_delay version becomes ``stable`` on the fleet.

(For Airflow's DAG discovery safe mode, this file mentions both "airflow" and "dag".)

The fleet's promote task declares the Asset ``runway://serving/flights_delay/stable`` as an outlet, so Airflow
records an Asset event when ``stable`` moves, with the new version in the event's ``extra``
(``pipeline_components.client.notify.stable_payload``). This DAG is scheduled on that Asset. Its task reads the
version from the event and asks the fleet, pinned to that exact version, about real flights: a consumer's
"re-score with the new model" step. Copy it into your DAGs folder (or point ``AIRFLOW__CORE__DAGS_FOLDER`` here).

Where the fleet is, is this consumer's own configuration (``RUNWAY_SERVING_REST_URL``, default
http://127.0.0.1:8501), never an address taken from the event: an event says *what* changed, not where to go.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pendulum
from airflow.sdk import Asset, dag, task

log = logging.getLogger(__name__)

MODEL = "flights_delay"
REST_URL_ENV = "RUNWAY_SERVING_REST_URL"
DEFAULT_REST_URL = "http://127.0.0.1:8501"
# The same string as pipeline_components.client.assets.stable_asset_uri(MODEL); spelled out so that a downstream
# project that does not install runway can copy this file as it is.
STABLE = Asset(f"runway://serving/{MODEL}/stable")

FLIGHT = {
    "distance": 1617.0, "sched_dep_hour": 23, "sched_arr_hour": 4, "day_of_week": 6, "day": 1, "temp": 41.0,
    "dewp": 33.98, "humid": 75.88, "wind_speed": 4.60312, "precip": 0.0, "pressure": 1016.8, "visib": 10.0,
    "plane_year": 2008, "plane_seats": 200, "weather_known": 1, "plane_known": 1, "carrier": "B6",
    "origin": "JFK", "dest": "PSE", "month_name": "dec",
}  # fmt: skip


def stable_versions(triggering_asset_events: Any) -> list[dict[str, Any]]:
    """The payloads of the Asset events that triggered this run, oldest first (several may have queued up)."""
    return [dict(event.extra) for event in triggering_asset_events[STABLE] if event.extra.get("version") is not None]


@dag(
    dag_id="flights_stable_consumer",
    schedule=[STABLE],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["runway", "example", "consumer"],
    doc_md=__doc__,
)
def flights_stable_consumer() -> None:
    @task
    def score_with_new_stable(triggering_asset_events: Any = None) -> dict[str, Any]:
        from pipeline_components.client import ServingClient

        payloads = stable_versions(triggering_asset_events)
        if not payloads:  # e.g. a re-run of a rollout that changed nothing: no new version to act on
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(f"no {STABLE.uri} event with a new version triggered this run")
        newest = payloads[-1]
        rest_url = os.environ.get(REST_URL_ENV) or DEFAULT_REST_URL  # read in the task: nothing at parse time
        with ServingClient(rest_url=rest_url, grpc_target=None, model=MODEL) as client:
            answer = client.predict(FLIGHT, version=int(newest["version"]))
        log.info(
            "%s version %s is stable (was %s): P(delay) of the example flight = %s",
            MODEL,
            newest["version"],
            newest.get("previous_version"),
            answer.predictions[0],
        )
        return {"version": newest["version"], "prediction": answer.predictions[0]}

    score_with_new_stable()


flights_stable_consumer()
