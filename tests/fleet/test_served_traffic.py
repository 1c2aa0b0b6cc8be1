"""Served traffic on a real fleet: the fleet logs requests when the pipeline's configuration says so
(``serving.request_logging``), and ``runway traffic replay`` sends real flights through it (issue 20, items 1 and 5).

One real 3-instance local fleet of runway's model server behind nginx, serving two tiny models: ``tiny_logged``
(``y = 2 x + n``) and ``tiny_flights`` (the flights model's serving inputs; the real one is too heavy to train here).
Request log files are closed after 1 s (``--runway_request_log_max_file_seconds=1``) so that the test reads them as
traffic arrives; they are read back with ``request_log_reader.read_rows`` in the runtime environment, as the
monitoring reads them. The replayed rows are 40 real December flights as ``runway data prepare flights`` wrote them.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.cli import main
from pipeline_components.client.client import ServingClient
from pipeline_components.config import PipelineConfig, load_pipeline_config
from pipeline_components.fleet.nginx import find_nginx
from pipeline_components.fleet.operations import apply_request_logging, roll_out
from pipeline_components.fleet.request_logging import request_log_prefix
from pipeline_components.settings import CHECKOUT
from tests.conftest import CONFIGS
from tests.fleet.fixtures import DECEMBER_SAMPLE, RunningFleet, prepare_december_sample, start_fleet
from tests.helpers import missing

MODEL = "tiny_logged"
W_GOOD_A = 2.0  # tests/fleet/tiny_models.py: good_a answers y = 2 x + n

FLIGHTS_MODEL = "tiny_flights"

READ_ROWS = """
import json, sys
from pipeline_components.serving.request_log_reader import closed_files, read_rows
rows = read_rows(closed_files(sys.argv[1]), model_name=sys.argv[2])
print(json.dumps([{"version": r.version, "features": r.features, "predictions": r.predictions} for r in rows],
                 default=lambda value: value.decode()))
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[RunningFleet]:
    try:
        find_nginx()
    except Exception as error:
        missing(str(error))
    home = tmp_path_factory.mktemp("logging-fleet-home")
    running = start_fleet(
        home,
        tiny_model_dir,
        server=str(CHECKOUT / "scripts" / "runway-model-server"),  # tensorflow_model_server cannot log
        extra_server_flags=("--runway_request_log_max_file_seconds=1",),
    )
    try:
        running.publish(MODEL, 1, "good_a")
        roll_out(running.settings, config(rate=1.0), 1, say=print)
        running.publish(FLIGHTS_MODEL, 1, "flights_shaped")  # no verification samples: rolled out unverified
        roll_out(running.settings, flights_config(), 1, say=print, verify=False)
        yield running
    finally:
        running.stop()
        shutil.rmtree(home / "replica", ignore_errors=True)


def wait_until(done: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f} s: {what}"
        time.sleep(0.2)


def config(*, rate: float | None) -> PipelineConfig:
    logging = None if rate is None else {"sampling_rate": rate}
    return load_pipeline_config(CONFIGS / "penguins.yaml").with_overrides(
        {"serving.model_name": MODEL, "serving.request_logging": logging}
    )


def flights_config() -> PipelineConfig:
    return load_pipeline_config(CONFIGS / "flights.yaml").with_overrides(
        {"serving.model_name": FLIGHTS_MODEL, "serving.request_logging": {"sampling_rate": 1.0}}
    )


def logged_rows(fleet: RunningFleet, model: str = MODEL) -> list[dict[str, Any]]:
    prefix = request_log_prefix(home=fleet.settings.home, model=model)
    done = subprocess.run(
        [str(fleet.settings.runtime_python), "-c", READ_ROWS, str(prefix), model],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(CHECKOUT), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    return list(json.loads(done.stdout))


def client(fleet: RunningFleet, protocol: str = "rest") -> ServingClient:
    return ServingClient(
        rest_url=fleet.state.rest_url,
        grpc_target=fleet.state.grpc_target,
        model=MODEL,
        protocol=protocol,  # type: ignore[arg-type]
    )


def send(fleet: RunningFleet, xs: list[float]) -> None:
    for i, x in enumerate(xs):
        client(fleet, "grpc" if i % 2 else "rest").predict({"x": x, "n": 1})


def wait_logged(fleet: RunningFleet, xs: list[float]) -> list[dict[str, Any]]:
    """The logged rows once every one of ``xs`` is among them (polled; files close within 1 s)."""
    rows: list[dict[str, Any]] = []

    def all_there() -> bool:
        rows[:] = logged_rows(fleet)
        return set(xs) <= {row["features"]["x"] for row in rows}

    wait_until(all_there, timeout_s=30, what=f"requests {xs} in the request log of {MODEL}")
    return rows


def test_requests_through_nginx_are_logged_with_the_version_that_answered(fleet: RunningFleet) -> None:
    text = fleet.store.config_path.read_text()
    prefix = request_log_prefix(home=fleet.settings.home, model=MODEL)
    assert f'filename_prefix: "{prefix}"' in text and "sampling_rate: 1" in text, text

    xs = [101.0, 102.0, 103.0, 104.0, 105.0, 106.0]  # over REST and gRPC, through nginx's published ports
    send(fleet, xs)
    rows = [row for row in wait_logged(fleet, xs) if row["features"]["x"] in xs]
    assert len(rows) == len(xs)  # sampling rate 1.0: every request once, on whichever instance answered it
    assert {row["version"] for row in rows} == {1}
    assert all(row["predictions"]["y"] == pytest.approx(W_GOOD_A * row["features"]["x"] + 1) for row in rows)


def test_logging_rate_changed_off_and_on_keeps_the_served_version_answering(fleet: RunningFleet) -> None:
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    def traffic() -> None:
        steady = client(fleet)
        while not stop.is_set():
            try:
                steady.predict({"x": 0.5, "n": 0})
                answered[0] += 1
            except Exception as error:
                failures.append(str(error))

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    try:
        wait_until(lambda: answered[0] >= 5, timeout_s=30, what="steady traffic through nginx")
        assert "is on at sampling rate 0.5" in apply_request_logging(fleet.settings, config(rate=0.5), say=print)
        logging = fleet.store.read_config()[MODEL].logging
        assert logging is not None and logging.sampling_rate == 0.5
        assert "is off" in apply_request_logging(fleet.settings, config(rate=None), say=print)
        assert fleet.store.read_config()[MODEL].logging is None  # models.config carries none for it
        off = [501.0, 502.0, 503.0, 504.0]
        send(fleet, off)
        assert "is on at sampling rate 1" in apply_request_logging(fleet.settings, config(rate=1.0), say=print)
        markers = [901.0, 902.0]
        send(fleet, markers)
        # Files are written in order: once the later markers are there, anything logged while off would be too.
        rows = wait_logged(fleet, markers)
        before = answered[0]
        wait_until(lambda: answered[0] > before + 5, timeout_s=30, what="traffic still answered after the reloads")
    finally:
        stop.set()
        sender.join(timeout=30)
    assert not {row["features"]["x"] for row in rows} & set(off), "requests answered while logging was off were logged"
    assert failures == [], failures[:3]
    for address in fleet.state.instances:  # version 1 was loaded once per instance, never unloaded or reloaded
        log = (fleet.fleet.log_dir / f"{address.name}.log").read_text()
        assert log.count(f"Successfully loaded servable version {{name: {MODEL} version: 1}}") == 1, address.name
        assert f"Unloading servable version {{name: {MODEL}" not in log, address.name


@pytest.fixture
def flights_home(fleet: RunningFleet, monkeypatch: pytest.MonkeyPatch) -> RunningFleet:
    """The fleet's RUNWAY_HOME for the CLI, with the December sample as the prepared span 12 of flights."""
    prepare_december_sample(fleet.settings)
    for name, value in fleet.settings.as_env().items():
        monkeypatch.setenv(name, value)
    return fleet


def replay_cli(*argv: str) -> list[str]:
    return ["traffic", "replay", "flights", "--month", "12", "--model", FLIGHTS_MODEL, *argv]


def test_replay_sends_real_flights_at_the_rate_bounded_by_count(
    flights_home: RunningFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(replay_cli("--rate", "20", "--count", "30", "--protocol", "grpc", "--json"))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert (report["requests"], report["answered"], report["failed"]) == (30, 30, 0)
    assert report["versions"] == {"1": 30}  # gRPC names the version that answered
    assert 29 / 20 <= report["duration_s"] < 29 / 20 + 5  # the 30th request leaves 1.45 s after the first
    assert 0 < report["p50_ms"] <= report["p99_ms"] <= report["max_ms"]
    assert "sent 30/30" in captured.err  # progress, on stderr beside --json
    # The requests were the real flights, with the features as a client sends them: the request log has them.
    with DECEMBER_SAMPLE.open(newline="") as sample:
        everything = list(csv.DictReader(sample))
    flights = [everything[i * len(everything) // 30] for i in range(30)]  # spread over the span, in order
    sent = Counter((row["carrier"], row["dest"], float(row["distance"])) for row in flights)

    def all_logged() -> bool:
        rows = logged_rows(flights_home, FLIGHTS_MODEL)
        logged = Counter((r["features"]["carrier"], r["features"]["dest"], r["features"]["distance"]) for r in rows)
        return sent <= logged  # every replayed flight, each as often as it was sent

    wait_until(all_logged, timeout_s=30, what="the 30 replayed flights in the request log of tiny_flights")


def test_replay_stops_at_its_duration_and_prints_a_table(
    flights_home: RunningFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(replay_cli("--rate", "10", "--duration", "1")) == 0
    out = capsys.readouterr().out
    header, cells = out.splitlines()[-3:-1]
    assert header.split()[:3] == ["requests", "answered", "failed"]
    requests, answered, failed = (int(cell) for cell in cells.split()[:3])
    assert 9 <= requests <= 11 and answered == requests and failed == 0  # 1 s at 10 req/s of the 40 rows


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(("--month", "11"), "span 11 of flights is not prepared", id="unknown-month"),
        pytest.param(("--model", "not_served"), "not_served (label stable) is not served by the fleet", id="model"),
        pytest.param(("--label", "canary"), "is not served by the fleet", id="label"),
    ],
)
def test_replay_refuses_what_it_cannot_replay(
    flights_home: RunningFleet, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    assert main(replay_cli("--count", "3", *argv)) == 2
    assert message in capsys.readouterr().err
