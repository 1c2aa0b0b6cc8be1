"""Replay real rows through the serving fleet at a steady rate, bounded in count and time (issue 20: real traffic).

    report = replay(client, rows, rate=20.0, count=500, duration_s=60.0)
    print(report.table())                    # answered, failed, p50 / p99 latency, versions that answered

Unlike the load generator (``load.py``: closed loop, requests back to back), a replay is open loop, the way real
traffic arrives: request ``i`` is sent ``i / rate`` seconds after the start whether or not earlier ones were answered,
one row per request, by a small pool of threads sharing one ``ServingClient`` (its REST connection is per thread,
its gRPC channel shared). It stops after ``count`` requests, after ``duration_s`` seconds, or when the rows run out,
whichever comes first, then waits for the requests in flight. A request counts as failed when the client raises,
after its own retries: what a downstream app would see. ``runway traffic replay`` sends the real flights of a month
this way (docs/serving.md, "Replaying real traffic").
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline_components.client.client import Protocol, ServingClient
from pipeline_components.client.load import percentile

DEFAULT_CONCURRENCY = 8
PROGRESS_EVERY_S = 2.0
UNNAMED_VERSION = "not named"  # REST predict answers do not say which version answered


@dataclass(kw_only=True)
class ReplayReport:
    """What a replay sent and what came back.

    Attributes:
        model, label, protocol: what was asked, and how.
        rate: the requested rate (requests/s).
        requests: requests sent (answered + failed).
        answered, failed: requests answered, and those the client raised for (after its retries).
        duration_s: from the first request sent to the last answer.
        p50_ms, p99_ms, max_ms: latency of the answered requests (the client's own, retries included).
        versions: version that answered -> requests (gRPC names it in every answer; REST only when a version was
            asked, else ``"not named"``).
        error_kinds: error type -> count; ``error_samples``: the first few messages.
    """

    model: str
    label: str | None
    protocol: str
    rate: float
    requests: int = 0
    answered: int = 0
    failed: int = 0
    duration_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    versions: dict[str, int] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)

    @property
    def achieved_rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "achieved_rps": round(self.achieved_rps, 3)}

    def table(self) -> str:
        """The summary as a table, then the versions that answered and the first errors."""
        head = ("requests", "answered", "failed", "p50 ms", "p99 ms", "max ms", "req/s", "seconds")
        cells = (
            str(self.requests),
            str(self.answered),
            str(self.failed),
            f"{self.p50_ms:.1f}",
            f"{self.p99_ms:.1f}",
            f"{self.max_ms:.1f}",
            f"{self.achieved_rps:.1f}",
            f"{self.duration_s:.1f}",
        )
        widths = [max(len(a), len(b)) for a, b in zip(head, cells, strict=True)]
        lines = ["  ".join(text.rjust(width) for text, width in zip(row, widths, strict=True)) for row in (head, cells)]
        answered_by = ", ".join(f"{version}: {n}" for version, n in sorted(self.versions.items()))
        lines.append(f"answered by version: {answered_by or 'none'}")
        for kind, n in sorted(self.error_kinds.items()):
            lines.append(f"failed: {n} x {kind}")
        lines.extend(f"  e.g. {sample}" for sample in self.error_samples[:3])
        return "\n".join(lines)


@dataclass(frozen=True, kw_only=True)
class ReplayProgress:
    """Where a replay is, reported every ``PROGRESS_EVERY_S`` seconds."""

    sent: int
    answered: int
    failed: int
    planned: int
    elapsed_s: float


class _Tally:
    """The answers so far; filled by the sending threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies_ms: list[float] = []
        self.failed = 0
        self.versions: Counter[str] = Counter()
        self.error_kinds: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self.last_answer = 0.0

    def answered(self, latency_s: float, version: int | None) -> None:
        with self.lock:
            self.latencies_ms.append(latency_s * 1000.0)
            self.versions[str(version) if version is not None else UNNAMED_VERSION] += 1
            self.last_answer = time.monotonic()

    def error(self, error: Exception) -> None:
        with self.lock:
            self.failed += 1
            self.error_kinds[type(error).__name__] += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(str(error))
            self.last_answer = time.monotonic()


def replay(
    client: ServingClient,
    rows: Sequence[dict[str, Any]],
    *,
    rate: float,
    count: int | None = None,
    duration_s: float | None = None,
    protocol: Protocol | None = None,
    version: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Callable[[ReplayProgress], None] | None = None,
) -> ReplayReport:
    """Send ``rows`` one per request at ``rate`` requests/s through ``client``, bounded by ``count`` and
    ``duration_s``.

    Args:
        client: asks the model, label or version it was made for.
        rows: raw features, as the serving signature takes them; each is sent once, in order.
        rate: requests per second (open loop: the schedule does not wait for answers).
        count: send at most this many (default: every row).
        duration_s: stop sending after this many seconds (default: no bound).
        protocol: ``rest`` or ``grpc`` (default: the client's).
        version: ask this version instead of the client's label.
        concurrency: requests in flight at most; a schedule the fleet cannot keep up with is sent late, not
            dropped (the report's ``req/s`` shows it).
        progress: called about every 2 s while sending, and once at the end.

    Returns:
        The report.

    Raises:
        ValueError: ``rate``, ``count``, ``duration_s`` or ``concurrency`` is not positive.
    """
    for name, value in (("rate", rate), ("count", count), ("duration_s", duration_s), ("concurrency", concurrency)):
        if value is not None and value <= 0:
            raise ValueError(f"{name} must be positive, not {value}")
    planned = min(len(rows), count) if count is not None else len(rows)
    tally = _Tally()
    chosen = protocol or client.protocol

    def send(row: dict[str, Any]) -> None:
        try:
            answer = (
                client.predict(row, protocol=chosen, version=version)
                if version
                else client.predict(row, protocol=chosen)
            )
        except Exception as error:  # every failure is the report's to count, whatever its type
            tally.error(error)
        else:
            tally.answered(answer.latency_s, answer.version)

    start = time.monotonic()
    sent = 0
    next_progress = start + PROGRESS_EVERY_S
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="replay") as pool:
        for index in range(planned):
            due = start + index / rate
            now = time.monotonic()
            if duration_s is not None and max(now, due) - start >= duration_s:
                break
            if due > now:
                time.sleep(due - now)
            pool.submit(send, rows[index])
            sent += 1
            if progress is not None and time.monotonic() >= next_progress:
                next_progress += PROGRESS_EVERY_S
                progress(_progress(tally, sent, planned, start))
    # Leaving the pool's block waited for every request in flight.
    if progress is not None:
        progress(_progress(tally, sent, planned, start))
    latencies = sorted(tally.latencies_ms)
    return ReplayReport(
        model=client.model,
        label=None if version else client.label,
        protocol=chosen,
        rate=rate,
        requests=sent,
        answered=len(latencies),
        failed=tally.failed,
        duration_s=max(tally.last_answer, start) - start,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        max_ms=latencies[-1] if latencies else 0.0,
        versions=dict(tally.versions),
        error_kinds=dict(tally.error_kinds),
        error_samples=list(tally.error_samples),
    )


def _progress(tally: _Tally, sent: int, planned: int, start: float) -> ReplayProgress:
    with tally.lock:
        answered, failed = len(tally.latencies_ms), tally.failed
    return ReplayProgress(
        sent=sent, answered=answered, failed=failed, planned=planned, elapsed_s=time.monotonic() - start
    )
