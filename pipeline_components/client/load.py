"""A bounded load generator for the serving fleet: N client processes over REST and gRPC, errors and percentiles.

Used by the zero-downtime tests (``tests/fleet/test_zero_downtime.py``) and the benchmarks (``benchmarks/``):

    with LoadGenerator(rest_url=..., grpc_target=..., model="flights_delay", rows=[{...}], processes=4) as load:
        ...                                  # roll out, restart an instance: the load keeps running meanwhile
    report = load.report                     # requests, errors, p50/p99 per protocol, answers seen

or, from a shell (a JSON report on stdout):

    python -m pipeline_components.client.load --rest-url http://127.0.0.1:8501 --grpc-target 127.0.0.1:8500 \\
        --model flights_delay --rows-json @rows.json --processes 4 --duration 30

Each process runs one ``ServingClient`` with one protocol (processes alternate REST, gRPC, REST...) and sends
requests back to back (closed loop, no think time) until told to stop or ``duration_s`` has passed. A request counts
as failed when the client raises, i.e. after its retry policy gave up: this measures what a downstream app using the
client sees. Retries the client absorbed are counted separately (``retried``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline_components.client.client import PROTOCOLS, Protocol, RetryPolicy, ServingClient

# Spawned (not forked) workers: gRPC's core must not be shared across fork, and each worker builds its own client.
_CONTEXT = multiprocessing.get_context("spawn")


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


@dataclass(kw_only=True)
class ProtocolReport:
    """What the processes of one protocol saw."""

    protocol: str
    processes: int
    requests: int = 0  # answered or failed, each counted once whatever the retries
    errors: int = 0
    retried: int = 0  # requests that succeeded only after the client retried
    duration_s: float = 0.0
    throughput_rps: float = 0.0  # answered requests per second, all processes of this protocol together
    examples_per_s: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    error_samples: list[str] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)  # distinct first predictions (which version answered)


@dataclass(kw_only=True)
class LoadReport:
    model: str
    label: str | None
    batch: int
    processes: int
    duration_s: float
    protocols: dict[str, ProtocolReport]

    @property
    def errors(self) -> int:
        return sum(report.errors for report in self.protocols.values())

    @property
    def requests(self) -> int:
        return sum(report.requests for report in self.protocols.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "errors": self.errors, "requests": self.requests}

    def summary(self) -> str:
        lines = [
            f"{self.requests} requests by {self.processes} processes in {self.duration_s:.1f} s: {self.errors} failed"
        ]
        for report in self.protocols.values():
            lines.append(
                f"  {report.protocol:4} x{report.processes}: {report.requests} requests, {report.errors} failed, "
                f"{report.retried} retried, {report.throughput_rps:.0f} req/s, p50 {report.p50_ms:.1f} ms, "
                f"p99 {report.p99_ms:.1f} ms, max {report.max_ms:.1f} ms"
            )
            for sample in report.error_samples[:3]:
                lines.append(f"      error: {sample}")
        return "\n".join(lines)


def _answer_key(predictions: list[Any]) -> str:
    first = predictions[0] if predictions else None
    while isinstance(first, list) and first:
        first = first[0]
    return f"{first:.4g}" if isinstance(first, float) else json.dumps(first)


def _worker(
    spec: dict[str, Any],
    protocol: Protocol,
    start_at: float,
    stop: Any,
    results: Any,
) -> None:
    """One client process: requests back to back until ``stop`` is set or the duration has passed."""
    client = ServingClient(
        rest_url=spec["rest_url"],
        grpc_target=spec["grpc_target"],
        model=spec["model"],
        protocol=protocol,
        timeout_s=spec["timeout_s"],
        retry=RetryPolicy(**spec["retry"]),
        label=spec["label"],
    )
    rows = spec["rows"]
    batch = [rows[i % len(rows)] for i in range(spec["batch"])]
    for _ in range(spec["warmup"]):  # connection set-up and metadata before the clock starts
        try:
            client.predict(batch, version=spec["version"], signature=spec["signature"])
        except Exception:
            break
    while time.time() < start_at:
        time.sleep(0.005)
    deadline = start_at + spec["duration_s"]
    latencies: list[float] = []
    errors: list[str] = []
    kinds: Counter[str] = Counter()
    answers: Counter[str] = Counter()
    retried = 0
    began = time.perf_counter()
    while not stop.is_set() and time.time() < deadline:
        tick = time.perf_counter()
        try:
            answer = client.predict(batch, version=spec["version"], signature=spec["signature"])
        except Exception as error:
            kinds[type(error).__name__] += 1
            if len(errors) < 5:
                errors.append(f"{type(error).__name__}: {error}"[:300])
            continue
        latencies.append(time.perf_counter() - tick)
        retried += answer.attempts > 1
        answers[_answer_key(answer.predictions)] += 1
    client.close()
    results.put(
        {
            "protocol": protocol,
            "latencies": latencies,
            "errors": sum(kinds.values()),
            "error_samples": errors,
            "error_kinds": dict(kinds),
            "answers": dict(answers),
            "retried": retried,
            "elapsed": time.perf_counter() - began,
        }
    )


class LoadGenerator:
    """Client processes sending requests until ``stop()`` (or ``duration_s``); ``report`` afterwards.

    Args:
        rest_url, grpc_target: the endpoint (the load balancer).
        model: the served model.
        rows: raw feature rows; each request sends ``batch`` of them (cycled).
        processes: client processes; they alternate over ``protocols`` (default REST, gRPC).
        duration_s: the longest the load runs (``stop()`` ends it earlier).
        label, version: what to ask (default label ``stable``).
        timeout_s, retry: each client's timeout and retry policy.
        warmup: untimed requests per process before the start.
    """

    def __init__(
        self,
        *,
        rest_url: str,
        grpc_target: str,
        model: str,
        rows: Sequence[Mapping[str, Any]],
        processes: int = 4,
        protocols: Sequence[Protocol] = PROTOCOLS,
        duration_s: float = 600.0,
        batch: int = 1,
        label: str | None = "stable",
        version: int | None = None,
        signature: str = "serving_default",
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        warmup: int = 3,
    ) -> None:
        if not rows:
            raise ValueError("the load needs at least one row of features")
        retry = retry or RetryPolicy(attempts=6, initial_backoff_s=0.05, max_backoff_s=1.0)
        self.spec: dict[str, Any] = {
            "rest_url": rest_url,
            "grpc_target": grpc_target,
            "model": model,
            "rows": [dict(row) for row in rows],
            "duration_s": duration_s,
            "batch": batch,
            "label": None if version is not None else label,
            "version": version,
            "signature": signature,
            "timeout_s": timeout_s,
            "retry": asdict(retry),
            "warmup": warmup,
        }
        self.assignment: list[Protocol] = [protocols[i % len(protocols)] for i in range(processes)]
        self._stop = _CONTEXT.Event()
        self._results: Any = _CONTEXT.Queue()
        self._processes: list[Any] = []
        self._started_at = 0.0
        self.report: LoadReport | None = None

    def start(self, *, start_delay_s: float = 0.0) -> LoadGenerator:
        """Start the processes; the timed load begins ``start_delay_s`` from now (time for imports and warm-up)."""
        self._started_at = time.time() + start_delay_s
        for protocol in self.assignment:
            process = _CONTEXT.Process(
                target=_worker,
                args=(self.spec, protocol, self._started_at, self._stop, self._results),
                daemon=True,
            )
            process.start()
            self._processes.append(process)
        return self

    def wait_started(self, timeout_s: float = 120.0) -> None:
        """Block until the timed load has begun (the workers' start time has passed)."""
        deadline = time.monotonic() + timeout_s
        while time.time() < self._started_at:
            if time.monotonic() > deadline:
                raise TimeoutError("the load did not start in time")
            time.sleep(0.05)

    def stop(self, timeout_s: float = 60.0) -> LoadReport:
        """Stop the load, collect every process's figures, and build the report."""
        self._stop.set()
        collected: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s + self.spec["duration_s"]
        while len(collected) < len(self._processes) and time.monotonic() < deadline:
            try:
                collected.append(self._results.get(timeout=1.0))
            except Exception:
                if not any(process.is_alive() for process in self._processes):
                    break
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        self.report = self._build(collected)
        return self.report

    def __enter__(self) -> LoadGenerator:
        self.start(start_delay_s=4.0)  # spawned workers import, connect and warm up first
        self.wait_started()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.report is None:
            self.stop()

    def _build(self, collected: list[dict[str, Any]]) -> LoadReport:
        reports: dict[str, ProtocolReport] = {}
        missing = len(self._processes) - len(collected)
        for protocol in dict.fromkeys(self.assignment):
            parts = [part for part in collected if part["protocol"] == protocol]
            latencies = sorted(value for part in parts for value in part["latencies"])
            elapsed = max((part["elapsed"] for part in parts), default=0.0)
            kinds: Counter[str] = Counter()
            answers: Counter[str] = Counter()
            for part in parts:
                kinds.update(part["error_kinds"])
                answers.update(part["answers"])
            errors = sum(part["errors"] for part in parts)
            report = ProtocolReport(
                protocol=protocol,
                processes=self.assignment.count(protocol),
                requests=len(latencies) + errors,
                errors=errors,
                retried=sum(part["retried"] for part in parts),
                duration_s=round(elapsed, 3),
                throughput_rps=round(len(latencies) / elapsed, 1) if elapsed else 0.0,
                examples_per_s=round(len(latencies) * self.spec["batch"] / elapsed, 1) if elapsed else 0.0,
                p50_ms=round(percentile(latencies, 0.50) * 1000, 2),
                p90_ms=round(percentile(latencies, 0.90) * 1000, 2),
                p99_ms=round(percentile(latencies, 0.99) * 1000, 2),
                max_ms=round((latencies[-1] if latencies else 0.0) * 1000, 2),
                error_samples=[sample for part in parts for sample in part["error_samples"]][:10],
                error_kinds=dict(kinds),
                answers=dict(answers),
            )
            reports[protocol] = report
        if missing > 0:  # a worker that died without reporting is a failure of the load test itself
            first = next(iter(reports.values()))
            first.errors += missing
            first.error_samples.append(f"{missing} client process(es) exited without a report")
        duration = max((report.duration_s for report in reports.values()), default=0.0)
        return LoadReport(
            model=self.spec["model"],
            label=self.spec["label"],
            batch=self.spec["batch"],
            processes=len(self._processes),
            duration_s=duration,
            protocols=reports,
        )


def _rows_argument(text: str) -> list[dict[str, Any]]:
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    value = json.loads(text)
    return [value] if isinstance(value, dict) else list(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_components.client.load",
        description="Closed-loop load on a TF Serving endpoint over REST and gRPC; prints a JSON report.",
    )
    parser.add_argument("--rest-url", required=True)
    parser.add_argument("--grpc-target", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--rows-json", required=True, help="one row of features, a list, or @FILE")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--protocols", default="rest,grpc", help="comma separated, alternated over the processes")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of timed load")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--label", default="stable")
    parser.add_argument("--version", type=int)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    protocols = [p for p in args.protocols.split(",") if p]
    load = LoadGenerator(
        rest_url=args.rest_url,
        grpc_target=args.grpc_target,
        model=args.model,
        rows=_rows_argument(args.rows_json),
        processes=args.processes,
        protocols=protocols,
        duration_s=args.duration,
        batch=args.batch,
        label=args.label,
        version=args.version,
        timeout_s=args.timeout,
    )
    load.start(start_delay_s=5.0)
    time.sleep(5.0 + args.duration)
    report = load.stop()
    print(report.summary(), file=sys.stderr)
    print(json.dumps(report.as_dict(), indent=2))
    return 0 if report.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
