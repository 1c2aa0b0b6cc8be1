"""The canary analysis on a real fleet, with real bad candidates (issue 20, items 3 and 4).

One real 3-instance local fleet of runway's model server behind nginx serves ``tiny_flights`` (the flights model's
serving inputs) as ``stable``, with every request logged (files closed after 1 s). While each candidate is analysed,
a client sends about 20 real December flights a second through the load balancer, REST and gRPC, and counts every
failed request: one ``ServingClient`` raised for after its retry policy (connection errors, 502, 503 and UNAVAILABLE
are retried; an answer with an error is not), what a downstream app sees, as in test_zero_downtime.py. The
candidates are real SavedModels (``tests/fleet/tiny_models.py``): one slower (a heavier graph), one failing on long
flights, one with shifted answers, and a good one. Each bad one must be rolled back on the check it fails, the good
one promoted, and the client must see no failed request at all.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.cli.commands.serving import rows_from_span
from pipeline_components.client.client import ServingClient
from pipeline_components.config import CanaryConfig
from pipeline_components.fleet import fleet_dir
from pipeline_components.fleet.nginx import canary_mirrors
from pipeline_components.fleet.request_logging import request_log_prefix
from pipeline_components.fleet.rollout import RolloutFailed
from pipeline_components.fleet.store import RequestLogging
from tests.fleet.fixtures import RunningFleet, prepare_december_sample, start_fleet
from tests.helpers import missing

pytestmark = pytest.mark.runtime

MODEL = "tiny_flights"
# Half the REST traffic copied: the slow candidate's extra CPU then leaves stable's latency alone (they share the
# instances, as mirrored traffic does in a real fleet), about 30 mirrored requests per interval.
OPTIONS = CanaryConfig(mirror_percent=50, interval_s=5, iterations=3, threshold=2, min_requests=15)


@dataclass
class Clients:
    """Real rows through the load balancer from a background thread, until stopped; every failure is kept."""

    fleet: RunningFleet
    rows: list[dict[str, Any]]
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        rest, grpc = (
            ServingClient(
                rest_url=self.fleet.state.rest_url,
                grpc_target=self.fleet.state.grpc_target,
                model=MODEL,
                protocol=protocol,  # type: ignore[arg-type]
            )
            for protocol in ("rest", "grpc")
        )
        while not self.stop.wait(0.05):
            row = self.rows[self.sent % len(self.rows)]
            try:
                (grpc if self.sent % 4 == 3 else rest).predict(row)
            except Exception as error:  # every failure counts, whatever its type
                self.failures.append(f"{type(error).__name__}: {error}")
            self.sent += 1


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[RunningFleet]:
    home = tmp_path_factory.mktemp("canary-home")
    try:
        running = start_fleet(home, tiny_model_dir, extra_server_flags=("--runway_request_log_max_file_seconds=1",))
    except Exception as error:
        missing(f"a local fleet: {error}")
    try:
        running.publish(MODEL, 1, "flights_shaped")
        running.rollout(MODEL, request_logging=logging(running)).run(1)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def clients(fleet: RunningFleet) -> Iterator[Clients]:
    prepare_december_sample(fleet.settings)
    rows, _ = rows_from_span(fleet.settings, "flights", 12, 10**6)
    clients = Clients(fleet, rows)
    thread = threading.Thread(target=clients.run, daemon=True)
    thread.start()
    yield clients
    clients.stop.set()
    thread.join(10)


def logging(fleet: RunningFleet) -> RequestLogging:
    return RequestLogging(
        filename_prefix=str(request_log_prefix(home=fleet.settings.home, model=MODEL)), sampling_rate=1.0
    )


def analyse(fleet: RunningFleet, version: int, kind: str) -> tuple[list[str] | None, str | None, dict[str, Any]]:
    """Roll ``kind`` out as ``version`` with the canary analysis: (lines when promoted, error when rolled back,
    the analysis report)."""
    fleet.publish(MODEL, version, kind)
    rollout = fleet.rollout(MODEL, request_logging=logging(fleet), canary=OPTIONS)
    try:
        lines, error = rollout.run(version), None
    except RolloutFailed as failed:
        lines, error = None, str(failed)
    finally:
        rollout.close()
    report = fleet_dir(fleet.settings.home) / "rollouts" / f"{MODEL}-canary-{version}.json"
    return lines, error, json.loads(report.read_text())


@pytest.mark.parametrize(
    ("version", "kind", "failed_check"),
    [
        (2, "flights_slow", "p99"),
        (3, "flights_failing", "success rate"),
        (4, "flights_shifted", "answers diverge"),
    ],
)
def test_a_bad_candidate_is_rolled_back_on_the_check_it_fails_and_no_client_request_fails(
    fleet: RunningFleet, clients: Clients, version: int, kind: str, failed_check: str
) -> None:
    sent_before = clients.sent
    lines, error, report = analyse(fleet, version, kind)
    assert lines is None and error is not None, f"{kind} was promoted: {lines}"
    assert "failed the canary analysis" in error and failed_check in error, error
    failed = [interval for interval in report["intervals"] if interval["failures"]]
    assert len(failed) == OPTIONS.threshold and failed[-1] == report["intervals"][-1]  # rolled back at once
    for interval in failed:
        assert interval["requests"] >= OPTIONS.min_requests  # judged on mirrored traffic, not on nothing
        assert any(failed_check in failure for failure in interval["failures"]), interval
    served = fleet.store.serving(MODEL)
    assert (served.stable, served.canary, version in served.versions) == (1, None, False)  # as before the rollout
    assert canary_mirrors(fleet_dir(fleet.settings.home) / "nginx") == {}  # the mirror is gone
    assert clients.sent - sent_before > 80
    assert clients.failures == []


def test_a_good_candidate_is_promoted_after_every_interval_passed(fleet: RunningFleet, clients: Clients) -> None:
    lines, error, report = analyse(fleet, 5, "flights_good")
    assert error is None and lines is not None
    assert any("passed the canary analysis (3 intervals" in line for line in lines), lines
    intervals = report["intervals"]
    assert len(intervals) == OPTIONS.iterations
    # An interval may fail on a noisy machine (a p99 over ~30 requests is their slowest): fewer than threshold do.
    assert sum(bool(interval["failures"]) for interval in intervals) < OPTIONS.threshold
    for interval in intervals:  # its answers were compared with stable's on the same requests, and are alike
        assert interval["answers_compared"] > 0 and interval["divergence"] < OPTIONS.max_answer_divergence
        assert interval["success_rate"] == 1.0
    assert fleet.store.serving(MODEL).stable == 5
    assert canary_mirrors(fleet_dir(fleet.settings.home) / "nginx") == {}
    assert clients.failures == []
