"""The rendezvous of a chief and its workers on other hosts, with stand-in training processes (no TensorFlow).

The chief (``remote.run_chief``, the Trainer task's node) and a worker (``remote.join``, a worker task's command) run
in threads of this process on two loopback addresses, as two hosts would on theirs; their training process is a
small Python script that records the ``TF_CONFIG`` it was given and exits as the test says.
"""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.errors import TrainingWorkerError
from pipeline_components.training import remote
from pipeline_components.training import rendezvous as rv

CHIEF_ADDRESS, WORKER_ADDRESS = "127.0.0.1", "127.0.0.2"  # two addresses of this machine, as two hosts' would be
QUEUES = ["worker-1", "worker-2"]


def stand_in_training(monkeypatch: pytest.MonkeyPatch, out: Path, *, exit_codes: dict[int, int] | None = None) -> None:
    """Every member's training process waits for the cluster as the real one does (``worker.await_cluster``), records
    the TF_CONFIG it got in ``out`` and exits with ``exit_codes[index]`` (default 0; -1: trains for a minute)."""
    out.mkdir(parents=True, exist_ok=True)
    codes = exit_codes or {}
    script = textwrap.dedent(f"""
        import json, os, sys, time
        from pathlib import Path
        from pipeline_components.training.worker import await_cluster
        assert sys.argv[1] == "member"
        await_cluster(Path(sys.argv[2]), int(sys.argv[3]), poll_s=0.05)
        config = json.loads(os.environ["TF_CONFIG"])
        index = config["task"]["index"]
        open(os.path.join({str(out)!r}, f"tf_config-{{index}}.json"), "w").write(os.environ["TF_CONFIG"])
        code = {codes!r}.get(index, 0)
        print(f"stand-in worker {{index}} ends with {{code}}", flush=True)
        if code == -1:
            time.sleep(60)
        sys.exit(code)
    """)
    monkeypatch.setattr(remote, "worker_argv", lambda *args: [sys.executable, "-c", script, *args])


class Background:
    """Run ``function`` in a thread; ``result()`` gives its value or raises its exception."""

    def __init__(self, function: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.value = function()
            except BaseException as error:
                self.error = error

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def result(self, timeout: float = 30) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "still running"
        if self.error is not None:
            raise self.error
        return self.value


def chief(folder: Path, spec: Path, *, timeout_s: float = 30) -> Background:
    return Background(
        lambda: remote.run_chief(
            spec,
            rendezvous=folder,
            workers=2,
            queues=QUEUES,
            host="worker-1",
            address=CHIEF_ADDRESS,
            timeout_s=timeout_s,
            poll_s=0.1,
        )
    )


def worker(folder: Path, *, timeout_s: float = 30) -> Background:
    return Background(
        lambda: remote.join(
            rendezvous=folder,
            index=1,
            host="worker-2",
            address=WORKER_ADDRESS,
            queue="worker-2",
            timeout_s=timeout_s,
            poll_s=0.1,
        )
    )


def test_the_folder_is_one_per_run_and_node_and_safe_for_any_run_id(tmp_path: Path) -> None:
    run_id = "manual__2026-11-22T05:37:45.566581+00:00"
    folder = rv.rendezvous_dir(tmp_path, run_id, "Trainer")
    assert folder == rv.rendezvous_dir(tmp_path, run_id, "Trainer")  # both sides compute the same folder
    assert folder.parent.parent == tmp_path / rv.FOLDER and ":" not in folder.parent.name
    others = {
        rv.rendezvous_dir(tmp_path, "manual__2026-11-22T05:37:45.566581-00:00", "Trainer"),  # same once sanitized
        rv.rendezvous_dir(tmp_path, run_id, "Trainer_2"),
    }
    assert folder not in others and len(others) == 2


def test_chief_and_worker_meet_and_train_with_each_others_addresses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in_training(monkeypatch, tmp_path / "seen")
    folder, spec = tmp_path / "rendezvous", tmp_path / "spec.json"
    joining = worker(folder)  # a worker task may start before the Trainer task
    time.sleep(0.5)
    members = chief(folder, spec).result()
    assert joining.result() is True
    configs = {i: json.loads((tmp_path / "seen" / f"tf_config-{i}.json").read_text()) for i in (0, 1)}
    endpoints = [member.endpoint for member in members]
    assert [m.address for m in members] == [CHIEF_ADDRESS, WORKER_ADDRESS]
    assert [m.host for m in members] == ["worker-1", "worker-2"]
    for index, config in configs.items():
        assert config == {"cluster": {"worker": endpoints}, "task": {"type": "worker", "index": index}}
    attempt = rv.Rendezvous(folder).root / json.loads((folder / "open.json").read_text())["attempt"]
    assert rv.attempt_end(attempt) == {"ok": True, "reason": ""}
    assert rv.read_cluster(attempt) == ({"worker": endpoints}, spec)


def test_a_worker_that_never_joins_fails_the_chief_naming_its_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in_training(monkeypatch, tmp_path / "seen")
    started = time.monotonic()
    with pytest.raises(TrainingWorkerError, match=r"training worker 1 \(Airflow task on queue worker-2\) did not join"):
        chief(tmp_path, tmp_path / "spec.json", timeout_s=1.5).result()
    assert time.monotonic() - started < 10
    attempt = tmp_path / json.loads((tmp_path / "open.json").read_text())["attempt"]
    assert rv.attempt_end(attempt)["ok"] is False  # type: ignore[index]


def test_a_retry_does_not_take_an_earlier_tries_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in_training(monkeypatch, tmp_path / "seen")
    earlier = rv.Rendezvous(tmp_path).open_attempt(workers=2, queues=QUEUES)
    rv.write_member(earlier, rv.Member(index=1, host="worker-2", address=WORKER_ADDRESS, port=20001, queue="worker-2"))
    with pytest.raises(TrainingWorkerError, match="did not join"):
        chief(tmp_path, tmp_path / "spec.json", timeout_s=1.5).result()


def test_a_failed_chief_fails_its_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in_training(monkeypatch, tmp_path / "seen", exit_codes={0: 3, 1: -1})
    joining = worker(tmp_path / "rendezvous")
    with pytest.raises(TrainingWorkerError, match=r"training worker 0 .* exited with status 3"):
        chief(tmp_path / "rendezvous", tmp_path / "spec.json").result()
    with pytest.raises(TrainingWorkerError, match=r"the chief \(Trainer task\) failed: training worker 0"):
        joining.result(timeout=15)


def test_a_dead_worker_fails_the_chief_with_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in_training(monkeypatch, tmp_path / "seen", exit_codes={0: -1, 1: 5})
    joining = worker(tmp_path / "rendezvous")
    started = time.monotonic()
    with pytest.raises(TrainingWorkerError, match=r"on queue worker-2\) failed") as failed:
        chief(tmp_path / "rendezvous", tmp_path / "spec.json").result()
    assert "stand-in worker 1 ends with 5" in failed.value.log_tail and failed.value.index == 1
    assert time.monotonic() - started < 20  # not after training.worker_timeout_s
    with pytest.raises(TrainingWorkerError, match="exited with status 5"):
        joining.result()


def test_a_chief_that_stops_beating_fails_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in_training(monkeypatch, tmp_path / "seen")
    monkeypatch.setattr(rv, "HEARTBEAT_STALE_S", 1.0)
    attempt = rv.Rendezvous(tmp_path).open_attempt(workers=2, queues=QUEUES)  # a chief that then died (SIGKILL)
    rv.Heartbeat(rv.beat_path(attempt, 0)).beat(force=True)
    with pytest.raises(TrainingWorkerError, match="stopped answering"):
        worker(tmp_path).result(timeout=15)
    assert rv.read_failure(attempt, 1) is not None  # a later chief of this attempt would know at once


def test_a_trainer_task_that_ends_before_training_fails_the_waiting_worker(tmp_path: Path) -> None:
    meeting = rv.Rendezvous(tmp_path)
    meeting.mark_task_ended("trainer", try_number=1, outcome="failed")  # an earlier try's end is not this one's
    joining = worker(tmp_path)
    time.sleep(0.5)
    assert joining.thread.is_alive()
    meeting.mark_task_ended("trainer", try_number=2, outcome="failed")
    with pytest.raises(TrainingWorkerError, match="the Trainer task ended before training started"):
        joining.result(timeout=10)


def test_a_run_under_another_strategy_releases_the_workers(tmp_path: Path) -> None:
    env = rv.chief_env(tmp_path, QUEUES)
    assert remote.remote_plan(strategy="mirrored", workers=2, environ=env) is None
    assert worker(tmp_path).result() is False  # the task skips
    assert remote.remote_plan(strategy="multi_worker_mirrored", workers=2, environ=env) == (tmp_path, QUEUES)
    assert rv.Rendezvous(tmp_path).released() is not None  # until the chief opens an attempt
    rv.Rendezvous(tmp_path).open_attempt(workers=2, queues=QUEUES)
    assert rv.Rendezvous(tmp_path).released() is None


def test_a_run_with_more_workers_than_placed_is_refused_on_both_sides(tmp_path: Path) -> None:
    env = rv.chief_env(tmp_path, QUEUES)
    with pytest.raises(TrainingWorkerError, match="asks for 3 multi_worker_mirrored workers, but the DAG placed 2"):
        remote.remote_plan(strategy="multi_worker_mirrored", workers=3, environ=env)
    with pytest.raises(TrainingWorkerError, match=r"refused this run's training workers: .* run with workers=2"):
        worker(tmp_path).result()


def test_without_the_dags_variables_nothing_changes() -> None:
    assert remote.remote_plan(strategy="multi_worker_mirrored", workers=2, environ={}) is None


def test_a_host_without_its_address_is_told_what_to_set() -> None:
    with pytest.raises(TrainingWorkerError, match="RUNWAY_HOST_ADDRESS"):
        remote.host_identity({rv.HOST_ENV: "worker-1"})
    assert remote.host_identity({rv.HOST_ENV: "worker-1", rv.HOST_ADDRESS_ENV: "10.0.0.3"}) == ("worker-1", "10.0.0.3")
