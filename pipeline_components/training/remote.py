"""``multi_worker_mirrored`` with its workers on other hosts: the chief (the Trainer task) and each joining worker.

The Trainer task's node (``run_chief``) and one Airflow task per other worker (``join``, run by ``python -m
pipeline_components.training.worker join ...`` on that worker's host) meet in a rendezvous folder of the shared
filesystem (``training.rendezvous``): each picks a free port on its own host's address, announces it and starts its
one training process, which imports TensorFlow meanwhile; the chief waits for all and writes the cluster spec, and
every training process then trains with ``TF_CONFIG`` naming the hosts' addresses. Nothing enters another host: a
member is started by its own host's Airflow worker, as it would be on separate machines.

Failure is bounded both ways. The chief's supervisor writes ``end.json`` when its attempt ends (``ok`` or the
reason); a worker stops its training process and fails on a failed end. A worker writes ``failed-<i>.json`` (with
the end of its log) when its training process dies, and both sides bump heartbeats: a member whose heartbeat stops
for ``HEARTBEAT_STALE_S`` (its host lost, its supervisor killed) fails the other side. The Airflow tasks also mark
their end (``task-*.json``), so a task that failed before it ever joined does not leave the other waiting until
``training.worker_timeout_s``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from pipeline_components.errors import TrainingWorkerError
from pipeline_components.ports import free_ports
from pipeline_components.processes import log_tail
from pipeline_components.training import rendezvous as rv
from pipeline_components.training.cluster import LOG_TAIL_LINES, LocalCluster, worker_argv

log = logging.getLogger(__name__)

# After the chief's successful end, how long a worker's own process may take to finish its (scratch) save.
WORKER_FINISH_GRACE_S = 60.0


def member_argv(attempt: Path, index: int) -> list[str]:
    """A member's training process: it imports TensorFlow now and trains once ``attempt`` has the cluster spec."""
    return worker_argv("member", str(attempt), str(index))


def _deadline_error(what: str, timeout_s: float, attempt: Path | None) -> TrainingWorkerError:
    where = f" (rendezvous {attempt})" if attempt else ""
    return TrainingWorkerError(f"{what} within training.worker_timeout_s = {timeout_s:g}s{where}")


def run_chief(
    spec_path: Path,
    *,
    rendezvous: Path,
    workers: int,
    queues: list[str],
    host: str,
    address: str,
    timeout_s: float,
    poll_s: float = 0.5,
) -> list[rv.Member]:
    """Open an attempt, wait for workers 1..N-1 to join, train as worker 0 (the chief, which exports).

    Args:
        spec_path: the training spec every member reads (``training.spec.write_spec``), on the shared filesystem.
        rendezvous: the run's rendezvous folder (``RUNWAY_TRAINING_RENDEZVOUS``).
        workers: N, the cluster's size; ``queues[i]`` is the queue of worker ``i`` (for messages).
        host, address: this host's name and the address the chief's training server listens on.
        timeout_s: ``training.worker_timeout_s``: the bound on waiting and training together.

    Returns:
        Every member, index order (who trained where).

    Raises:
        TrainingWorkerError: a worker never joined (naming it and its queue), died, stopped beating, or the run
            timed out; the attempt is ended as failed first, so the worker tasks fail too.
    """
    deadline = time.monotonic() + timeout_s
    meeting = rv.Rendezvous(rendezvous)
    watch = rv.Watch()
    for index in range(1, workers):
        watch.changed(meeting.task_marker(f"worker-{index}"))  # what an earlier try left: not this try's end
    attempt = meeting.open_attempt(workers=workers, queues=queues)
    beat = rv.Heartbeat(rv.beat_path(attempt, 0))
    local: LocalCluster | None = None
    try:
        beat.beat(force=True)
        chief = rv.Member(index=0, host=host, address=address, port=free_ports(1, address)[0], queue=queues[0])
        rv.write_member(attempt, chief)
        log.info("rendezvous %s: waiting for %d training worker(s) on queues %s", attempt, workers - 1, queues[1:])
        local = LocalCluster(attempt / "logs")  # its process imports TensorFlow while the workers gather
        process = local.launch("worker", 0, member_argv(attempt, 0), {}, serves_forever=False).process
        members = [chief]
        missing = list(range(1, workers))
        while missing:
            failure = local.failed_member()
            if failure is not None:
                raise failure
            for index in list(missing):
                _check_worker(attempt, index, queues, watch, joined=False)
                member = rv.read_member(attempt, index)
                if member is not None:
                    members.append(member)
                    missing.remove(index)
            if missing and time.monotonic() > deadline:
                names = ", ".join(f"training worker {i} (Airflow task on queue {queues[i]})" for i in missing)
                raise TrainingWorkerError(
                    f"{names} did not join within training.worker_timeout_s = {timeout_s:g}s (rendezvous {attempt}): "
                    "check that a Celery worker consumes that queue and that the task started (its log says why "
                    "not)",
                    role="worker",
                    index=missing[0],
                )
            beat.beat()
            if missing:
                time.sleep(poll_s)
        members.sort(key=lambda m: m.index)
        rv.write_cluster(attempt, members, spec_path)
        for member in members:
            log.info("%s", member.describe())
        while process.poll() != 0:
            failure = local.failed_member()
            if failure is not None:
                raise failure
            for index in range(1, workers):
                _check_worker(attempt, index, queues, watch, joined=True)
            if time.monotonic() > deadline:
                raise _deadline_error("training did not finish", timeout_s, attempt)
            beat.beat()
            time.sleep(poll_s)
    except BaseException as error:
        rv.end_attempt(attempt, ok=False, reason=str(error).splitlines()[0] if str(error) else type(error).__name__)
        raise
    finally:
        if local is not None:
            local.stop()
    rv.end_attempt(attempt, ok=True)
    log.info("multi_worker_mirrored across hosts: the chief finished; rendezvous %s", attempt)
    return members


def _check_worker(attempt: Path, index: int, queues: list[str], watch: rv.Watch, *, joined: bool) -> None:
    """Raise when worker ``index`` failed, its task ended, or (once joined) its heartbeat stopped."""
    who = f"training worker {index} (Airflow task on queue {queues[index]})"
    failure = rv.read_failure(attempt, index)
    if failure is not None:
        tail = str(failure.get("log_tail") or "")
        raise TrainingWorkerError(
            f"{who} failed: {failure.get('reason')}" + (f"\nLast lines of its log:\n{tail}" if tail else ""),
            role="worker",
            index=index,
            log_tail=tail,
        )
    marker = rv.Rendezvous(attempt.parent).task_marker(f"worker-{index}")
    if watch.changed(marker):
        outcome = rv.Rendezvous(attempt.parent).task_outcome(f"worker-{index}")
        raise TrainingWorkerError(f"{who} ended before the training did ({outcome})", role="worker", index=index)
    if joined and watch.silent_for(rv.beat_path(attempt, index)) > rv.HEARTBEAT_STALE_S:
        raise TrainingWorkerError(
            f"{who} stopped answering: no heartbeat for {rv.HEARTBEAT_STALE_S:g}s (its host lost, or its task killed)",
            role="worker",
            index=index,
        )


def join(
    *,
    rendezvous: Path,
    index: int,
    host: str,
    address: str,
    queue: str,
    timeout_s: float,
    poll_s: float = 0.5,
) -> bool:
    """Join the chief's current attempt as worker ``index`` and train until the chief ends it.

    Returns:
        True when this worker trained and the chief finished; False when the chief released this run's workers
        (the run trains under another strategy: nothing to do).

    Raises:
        TrainingWorkerError: the chief failed, ended, or stopped beating; this worker's training process died; the
            Trainer task ended before training started; or the run timed out.
    """
    deadline = time.monotonic() + timeout_s
    meeting = rv.Rendezvous(rendezvous)
    watch = rv.Watch()
    trainer_marker = meeting.task_marker("trainer")
    watch.changed(trainer_marker)
    me = rv.Member(index=index, host=host, address=address, port=free_ports(1, address)[0], queue=queue)
    joined: Path | None = None
    beat: rv.Heartbeat | None = None
    local: LocalCluster | None = None
    try:
        while True:
            released = meeting.released()
            if released is not None and joined is None:
                if released.get("ok"):
                    log.info("the chief released this run's training workers: %s", released.get("reason"))
                    return False
                raise TrainingWorkerError(f"the Trainer refused this run's training workers: {released.get('reason')}")
            current = meeting.current_attempt()
            if current is not None and current != joined:
                if local is not None:  # the chief of an earlier try: its process never got a cluster
                    local.stop()
                joined, beat = current, rv.Heartbeat(rv.beat_path(current, index))
                beat.beat(force=True)
                local = LocalCluster(current / "logs")  # its process imports TensorFlow while the chief gathers
                member = local.launch("worker", index, member_argv(current, index), {}, serves_forever=False)
                rv.write_member(current, me)
                log.info("joined %s as %s", current, me.describe())
            if local is not None:
                failure = local.failed_member()
                if failure is not None:
                    raise failure
            if joined is not None:
                _check_chief(joined, watch)
                found = rv.read_cluster(joined)
                if found is not None:
                    cluster, spec_path = found
                    break
            if watch.changed(trainer_marker):
                raise TrainingWorkerError(
                    f"the Trainer task ended before training started ({meeting.task_outcome('trainer')}): its log "
                    "says why"
                )
            if time.monotonic() > deadline:
                raise _deadline_error("the Trainer task (the chief) did not start the training", timeout_s, joined)
            if beat is not None:
                beat.beat()
            time.sleep(poll_s)
        assert beat is not None and local is not None
        if cluster["worker"][index] != me.endpoint:
            raise TrainingWorkerError(f"the cluster spec names {cluster['worker'][index]} for worker {index}, not me")
        log.info("training in cluster %s with spec %s", cluster["worker"], spec_path)
        finish_by: float | None = None
        while True:
            failure = local.failed_member()
            if failure is not None:
                raise failure
            end = rv.attempt_end(joined)
            if end is not None and not end.get("ok"):
                raise TrainingWorkerError(f"the chief (Trainer task) failed: {end.get('reason')}")
            if end is not None:
                finish_by = finish_by or time.monotonic() + WORKER_FINISH_GRACE_S
                if member.process.poll() == 0:
                    break
                if time.monotonic() > finish_by:
                    log.warning("the chief finished and exported; this worker's process did not end: stopped")
                    break
            else:
                _check_chief(joined, watch)
                if watch.changed(trainer_marker):
                    raise TrainingWorkerError("the Trainer task ended without ending the training (the chief died)")
            if time.monotonic() > deadline:
                raise _deadline_error("training did not finish", timeout_s, joined)
            beat.beat()
            time.sleep(poll_s)
        log.info("the chief finished; training worker %d done. End of its log:\n%s", index, log_tail(member.log_path))
        return True
    except BaseException as error:
        if joined is not None:  # the chief learns it now, not after HEARTBEAT_STALE_S
            tail = getattr(error, "log_tail", "") or log_tail(joined / "logs" / f"worker-{index}.log", LOG_TAIL_LINES)
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            rv.write_failure(joined, index, reason=reason, log_tail=tail)
        raise
    finally:
        if local is not None:
            local.stop()


def _check_chief(attempt: Path, watch: rv.Watch) -> None:
    end = rv.attempt_end(attempt)
    if end is not None and not end.get("ok"):
        raise TrainingWorkerError(f"the chief (Trainer task) failed: {end.get('reason')}")
    if watch.silent_for(rv.beat_path(attempt, 0)) > rv.HEARTBEAT_STALE_S:
        raise TrainingWorkerError(
            f"the chief (Trainer task) stopped answering: no heartbeat for {rv.HEARTBEAT_STALE_S:g}s in {attempt}"
        )


def host_identity(environ: dict[str, str] | None = None) -> tuple[str, str]:
    """(host name, address) of this host, as a deployment's Celery worker hands them to its tasks.

    Raises:
        TrainingWorkerError: ``RUNWAY_HOST_ADDRESS`` is not set (the deployment starts each worker with it).
    """
    env = dict(os.environ) if environ is None else environ
    address = env.get(rv.HOST_ADDRESS_ENV, "").strip()
    if not address:
        raise TrainingWorkerError(
            f"this Trainer trains with workers on other hosts ({rv.RENDEZVOUS_ENV} is set) but {rv.HOST_ADDRESS_ENV} "
            "is not: start each worker host's Celery worker with RUNWAY_HOST and RUNWAY_HOST_ADDRESS (its address "
            "on the hosts' network), as `runway deploy` does"
        )
    return env.get(rv.HOST_ENV, "").strip() or address, address


def remote_plan(*, strategy: str, workers: int, environ: dict[str, str] | None = None) -> tuple[Path, list[str]] | None:
    """Whether this Trainer process is the chief of workers on other hosts: (rendezvous, queues), or None.

    None when the DAG placed no remote workers (``RUNWAY_TRAINING_RENDEZVOUS`` unset: make run, the LocalExecutor),
    and when this run trains under another strategy (a run parameter changed it): the DAG's worker tasks are then
    released and skip.

    Raises:
        TrainingWorkerError: the run asks for another number of workers than the DAG placed (the worker tasks are
            told, and fail with the same message).
    """
    env = dict(os.environ) if environ is None else environ
    folder = env.get(rv.RENDEZVOUS_ENV, "").strip()
    if not folder:
        return None
    meeting = rv.Rendezvous(Path(folder))
    queues = [queue for queue in env.get(rv.WORKER_QUEUES_ENV, "").split(",") if queue]
    if strategy != "multi_worker_mirrored":
        meeting.release(ok=True, reason=f"this run trains under strategy {strategy!r}, in the Trainer task alone")
        return None
    if workers != len(queues):
        reason = (
            f"this run asks for {workers} multi_worker_mirrored workers, but the DAG placed {len(queues)} (on queues "
            f"{', '.join(queues)}) from the compiled configuration's training.workers: run with workers="
            f"{len(queues)}, or change training.workers and recompile (`runway compile`) so that the DAG places them"
        )
        meeting.release(ok=False, reason=reason)
        raise TrainingWorkerError(reason)
    return meeting.root, queues
