"""Issue 9's "zero failed client requests": client processes over REST and gRPC through nginx, during a full rollout
and during an instance restart, on a real 3-instance local fleet (tests/fleet/conftest.py's ``local_fleet``).

A failed request is one ``ServingClient`` raised for, i.e. after its retry policy (UNAVAILABLE, 502, 503 and
connection errors retried with backoff; nothing else): what a downstream app using the client sees. Requests the
client had to retry are reported beside the failures. Each test prints its p50/p99 per protocol and, with
``RUNWAY_LOAD_REPORT_DIR`` set, writes its report there as JSON (benchmarks/run.sh collects them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline_components.client import ServingClient
from pipeline_components.client.load import LoadGenerator, LoadReport
from tests.fleet.fixtures import RunningFleet

pytestmark = pytest.mark.runtime

ROW = {"x": 1.0, "n": 0}  # tiny models answer y = w * x + n = w: the answer says which version served
PROCESSES = 4  # two REST, two gRPC
WARM = 40  # requests answered before and after each event: the load runs across it, on both protocols


def load_on(fleet: RunningFleet, model: str) -> LoadGenerator:
    state = fleet.fleet.state() or fleet.state
    return LoadGenerator(
        rest_url=state.rest_url,
        grpc_target=state.grpc_target,
        model=model,
        rows=[ROW],
        processes=PROCESSES,
        duration_s=300.0,  # upper bound; each test stops the load itself
        timeout_s=10.0,
    )


def publish_report(name: str, report: LoadReport) -> None:
    print(f"\n{name}: {report.summary()}")
    out = os.environ.get("RUNWAY_LOAD_REPORT_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"{name}.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")


def assert_no_failures(report: LoadReport, *, min_requests: int) -> None:
    for protocol, part in report.protocols.items():
        assert part.errors == 0, f"{protocol}: {part.errors} failed requests: {part.error_samples}"
        assert part.requests >= min_requests, f"{protocol}: only {part.requests} requests: the load did not run"


def test_no_client_request_fails_during_a_full_rollout(local_fleet: RunningFleet) -> None:
    model = "tiny_zero_downtime_rollout"
    local_fleet.publish(model, 1, "good_a")
    local_fleet.rollout(model).run(1)
    local_fleet.publish(model, 2, "good_b")

    log = local_fleet.access_log()
    with load_on(local_fleet, model) as load:
        log.wait_answered(log.mark(), WARM)  # load before the rollout starts ...
        lines = local_fleet.rollout(model).run(2)
        log.wait_answered(log.mark(), WARM)  # ... and after it ended
    report = load.report
    assert report is not None
    publish_report("rollout", report)

    assert local_fleet.store.serving(model).stable == 2, lines
    assert_no_failures(report, min_requests=20)
    for protocol, part in report.protocols.items():
        # Both versions answered the load: it ran across the switch of `stable`, on each protocol.
        assert set(part.answers) == {"2", "3"}, f"{protocol} saw answers {part.answers}"


@pytest.mark.parametrize("kill", [pytest.param(False, id="sigterm"), pytest.param(True, id="sigkill")])
def test_no_client_request_fails_while_an_instance_restarts(local_fleet: RunningFleet, kill: bool) -> None:
    model = "tiny_zero_downtime_restart"
    if local_fleet.store.serving(model).stable is None:
        local_fleet.publish(model, 1, "good_a")
        local_fleet.rollout(model).run(1)
    state = local_fleet.fleet.state() or local_fleet.state
    victim = state.instances[0]
    log = local_fleet.access_log()

    with load_on(local_fleet, model) as load:
        log.wait_answered(log.mark(), WARM)
        local_fleet.fleet.stop_instance(victim.name, kill=kill)
        log.wait_answered(log.mark(), WARM)  # the fleet serves on two instances
        local_fleet.fleet.start_instance(victim.name)  # returns once it listens again
        # ... and takes traffic again (nginx tries it after fail_timeout): REST and gRPC answers from it.
        mark = log.mark()
        log.wait_answered(mark, 1, by=victim.rest_url.removeprefix("http://"))
        log.wait_answered(mark, 1, by=victim.grpc_target)
    report = load.report
    assert report is not None
    publish_report(f"restart-{'sigkill' if kill else 'sigterm'}", report)

    assert_no_failures(report, min_requests=20)
    restarted = next(a for a in (local_fleet.fleet.state() or state).instances if a.name == victim.name)
    with ServingClient(rest_url=restarted.rest_url, grpc_target=restarted.grpc_target, model=model) as direct:
        assert direct.predict(ROW).predictions == [1 * 2.0 + 0]  # the restarted instance serves stable again
