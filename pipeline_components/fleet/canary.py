"""Canary analysis: a verified candidate is judged on live traffic before ``stable`` moves to it.

``serving.rollout: canary`` adds the step ``analyse_canary`` between ``verify`` and ``promote``. While it runs, the
load balancer copies ``mirror_percent`` of the model's REST predict requests to ``stable`` to the ``canary`` label
(nginx's ``mirror``, ``fleet.nginx.set_canary_mirror``); clients get the stable answer only, so a candidate that
fails or answers wrongly costs them nothing (a slower one delays the next request on a connection it was copied
from, as a canary serving that share would). Every ``interval_s`` the candidate is compared with ``stable`` on what
the two answered in that interval, summed over the instances:

- request success rate, from the instances' Prometheus metrics (``runway_serving_request_count``, per version):
  at least ``min_success_rate``, or no worse than stable's;
- p99 latency, from the same metrics (``runway_serving_request_latency_seconds``): at most ``max_latency_ratio``
  times stable's, or stable's plus ``latency_margin_ms``;
- its answers, from the request logs (``serving.request_logging``): the Jensen-Shannon divergence between the
  candidate's and stable's answers to the same requests since the analysis started, at most
  ``max_answer_divergence`` (not checked, and said so, when the model's requests are not logged).

The intervals start once every instance has answered the candidate's first requests (``warm_up``: a version's
first run is slow once per process, which clients of a promoted version never see). An interval with fewer than
``min_requests`` mirrored requests fails (nothing to judge on). The candidate is rolled
back (the rollout's own rollback: the previous ``models.config`` everywhere) as soon as ``threshold`` intervals
failed, and passes after ``iterations`` intervals; Flagger and Argo Rollouts name these settings the same way.
Each interval's figures go to the task log and to ``$RUNWAY_HOME/fleet/rollouts/<model>-canary-<version>.md``
(and ``.json``), which the rollout's journal names. The mirror is removed whatever the outcome.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from pipeline_components.config.serving import CanaryConfig
from pipeline_components.durable import atomic_write
from pipeline_components.errors import RunwayError
from pipeline_components.fleet import FleetState, fleet_dir
from pipeline_components.fleet.canary_signals import (
    VersionCounts,
    interval_counts,
    js_divergence,
    paired_answers,
    scrape,
    warm_up,
)
from pipeline_components.fleet.instances import Instance
from pipeline_components.fleet.nginx import set_canary_mirror
from pipeline_components.fleet.store import ModelServing, RequestLogging

CANARY_STEP = "analyse_canary"


class CanaryFailed(RunwayError):
    """The candidate failed the analysis (the rollout then rolls it back)."""


class Rollout(Protocol):
    """What the analysis uses of ``fleet.rollout.Rollout`` (which imports this module)."""

    model: str
    home: Path
    instances: list[Instance]
    fleet: FleetState

    @property
    def request_logging(self) -> RequestLogging | None: ...
    def say(self, line: str) -> None: ...
    def candidate(self) -> int: ...
    def _previous(self) -> ModelServing: ...
    def _write_journal(self, **changes: Any) -> dict[str, Any]: ...


# -- the analysis --------------------------------------------------------------------------------------------------


@dataclass
class Interval:
    """One interval's figures and verdict."""

    number: int
    requests: int
    success_rate: float | None
    stable_success_rate: float | None
    p99_ms: float | None
    stable_p99_ms: float | None
    answers_compared: int
    divergence: float | None
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def judge(
    options: CanaryConfig, number: int, canary: VersionCounts, stable: VersionCounts, answers: tuple[list, list]
) -> Interval:
    """The checks of one interval (``answers``: stable's and the candidate's answers to the same requests)."""
    failures = []

    def rate(counts: VersionCounts) -> float | None:
        return counts.succeeded / counts.requests if counts.requests else None

    ours, theirs = rate(canary), rate(stable)
    p99, stable_p99 = canary.p99_ms(), stable.p99_ms()
    if canary.requests < options.min_requests:
        failures.append(f"{canary.requests} mirrored requests (fewer than {options.min_requests}: nothing to judge)")
    if ours is not None and ours < options.min_success_rate and (theirs is None or ours < theirs):
        failures.append(f"success rate {ours:.3f} < {options.min_success_rate} (stable {_figure(theirs, '.3f')})")
    if p99 is not None and stable_p99 is not None:
        allowed = max(stable_p99 * options.max_latency_ratio, stable_p99 + options.latency_margin_ms)
        if p99 > allowed:
            failures.append(f"p99 {p99:.1f} ms > {allowed:.1f} ms allowed (stable {stable_p99:.1f} ms)")
    divergence = js_divergence(*answers) if answers[0] else None
    if divergence is not None and divergence > options.max_answer_divergence:
        failures.append(
            f"answers diverge from stable's on the same {len(answers[0])} requests: Jensen-Shannon "
            f"{divergence:.3f} > {options.max_answer_divergence}"
        )
    return Interval(number, canary.requests, ours, theirs, p99, stable_p99, len(answers[0]), divergence, failures)


def _figure(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def analyse(rollout: Rollout, options: CanaryConfig) -> str:
    """Step ``analyse_canary`` (the rollout runs it as a step): mirror, judge each interval, and raise
    ``CanaryFailed`` as soon as ``threshold`` intervals failed."""
    candidate, stable = rollout.candidate(), rollout._previous().stable
    if stable is None:
        return f"no analysis: {rollout.model} has no stable version to compare version {candidate} with"
    if rollout.fleet.kind != "local":
        raise CanaryFailed(
            f"a {rollout.fleet.kind} fleet runs the official tensorflow/serving image, which has no per-version "
            "metrics and cannot log requests: the canary analysis needs runway's local fleet (docs/fleet.md, "
            "'Canary analysis'); use serving.rollout: true there"
        )
    nginx_dir = fleet_dir(rollout.home) / "nginx"
    urls = [instance.address.rest_url for instance in rollout.instances]
    report = CanaryReport(rollout, candidate=candidate, stable=stable, options=options)

    set_canary_mirror(nginx_dir, rollout.model, options.mirror_percent, master_pid=rollout.fleet.nginx_pid)
    rollout.say(
        f"canary analysis of version {candidate} against stable {stable}: {options.mirror_percent:g} % of the "
        f"stable REST predict requests mirrored, {options.iterations} x {options.interval_s:g} s intervals"
    )
    try:
        started, before = time.time(), warm_up(urls, rollout.model, candidate, wait_s=options.interval_s)
        for number in range(1, options.iterations + 1):
            time.sleep(options.interval_s)
            after = scrape(urls, rollout.model)
            canary, baseline = interval_counts(before, after, candidate), interval_counts(before, after, stable)
            report.add(judge(options, number, canary, baseline, report.answers(since=started)))
            before = after
            if report.failed >= options.threshold:
                raise CanaryFailed(report.decide(promoted=False))
    finally:
        set_canary_mirror(nginx_dir, rollout.model, None, master_pid=rollout.fleet.nginx_pid)
    return report.decide(promoted=True)


class CanaryReport:
    """The intervals so far: said in the task log as they come, written as Markdown and JSON with the decision."""

    def __init__(self, rollout: Rollout, *, candidate: int, stable: int, options: CanaryConfig) -> None:
        self.rollout, self.candidate, self.stable, self.options = rollout, candidate, stable, options
        self.intervals: list[Interval] = []
        self.path = fleet_dir(rollout.home) / "rollouts" / f"{rollout.model}-canary-{candidate}.md"
        logging = rollout.request_logging
        self.log_prefix = Path(logging.filename_prefix) if logging and logging.sampling_rate > 0 else None

    @property
    def failed(self) -> int:
        return sum(not interval.passed for interval in self.intervals)

    def answers(self, *, since: float) -> tuple[list[float], list[float]]:
        if self.log_prefix is None:
            return [], []
        from pipeline_components.serving.request_log_reader import closed_files, read_rows

        rows = read_rows(closed_files(self.log_prefix), model_name=self.rollout.model, since_secs=int(since))
        return paired_answers(rows, stable=self.stable, candidate=self.candidate)

    def add(self, interval: Interval) -> None:
        self.intervals.append(interval)
        verdict = "passed" if interval.passed else "FAILED: " + "; ".join(interval.failures)
        self.rollout.say(
            f"interval {interval.number}/{self.options.iterations}: {interval.requests} requests, success "
            f"{_figure(interval.success_rate, '.3f')} (stable {_figure(interval.stable_success_rate, '.3f')}), "
            f"p99 {_figure(interval.p99_ms, '.1f')} ms (stable {_figure(interval.stable_p99_ms, '.1f')} ms), "
            f"answers JS {_figure(interval.divergence, '.3f')} on {interval.answers_compared}: {verdict}"
        )
        self.write(decision=None)

    def decide(self, *, promoted: bool) -> str:
        if promoted:
            decision = (
                f"version {self.candidate} passed the canary analysis ({len(self.intervals)} intervals, "
                f"{self.failed} failed, threshold {self.options.threshold})"
            )
        else:
            last = self.intervals[-1]
            decision = (
                f"version {self.candidate} failed the canary analysis: {self.failed} of {len(self.intervals)} "
                f"intervals failed (threshold {self.options.threshold}); the last: {'; '.join(last.failures)}"
            )
        if self.log_prefix is None:
            decision += " (answers not compared: the model's requests are not logged, serving.request_logging)"
        self.write(decision=decision)
        self.rollout._write_journal(canary={"report": str(self.path), "decision": decision, "promoted": promoted})
        return f"{decision}; report {self.path}"

    def write(self, *, decision: str | None) -> None:
        rows = [
            f"| {i.number} | {i.requests} | {_figure(i.success_rate, '.3f')} | {_figure(i.stable_success_rate, '.3f')} "
            f"| {_figure(i.p99_ms, '.1f')} | {_figure(i.stable_p99_ms, '.1f')} | {_figure(i.divergence, '.3f')} "
            f"| {i.answers_compared} | {'passed' if i.passed else 'FAILED: ' + '; '.join(i.failures)} |"
            for i in self.intervals
        ]
        text = "\n".join(
            [
                f"# Canary analysis of {self.rollout.model} version {self.candidate} against stable {self.stable}",
                "",
                f"**{decision or 'in progress'}**",
                "",
                f"Settings: {self.options.model_dump_json()}",
                "",
                "| interval | requests | success | stable success | p99 ms | stable p99 ms | answers JS | compared "
                "| verdict |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
                *rows,
                "",
            ]
        )
        atomic_write(self.path, text)
        intervals = [asdict(interval) for interval in self.intervals]
        summary = {"decision": decision, "options": self.options.model_dump(), "intervals": intervals}
        atomic_write(self.path.with_suffix(".json"), json.dumps(summary, indent=2) + "\n")
