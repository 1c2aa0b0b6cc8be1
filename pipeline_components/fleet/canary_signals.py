"""What the canary analysis measures (``fleet.canary``): each version's requests, successes and latency from the
instances' Prometheus metrics, and its answers from the request logs, paired with stable's on the same requests."""

from __future__ import annotations

import json
import math
import re
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

PREDICTING_APIS = ("predict", "classify", "regress")
WARM_UP_REQUESTS = 2  # per instance, before the first interval starts (``warm_up``)
# Where infra/serving/monitoring.config puts the metrics (TF Serving's default, serving.model_config has it too but
# imports TF Serving's protos, which the orchestrator has not).
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)\{(.*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


# -- the instances' Prometheus metrics -----------------------------------------------------------------------------


@dataclass
class VersionCounts:
    """What one version answered, summed over instances: requests by status and the latency histogram."""

    by_status: Counter[str] = field(default_factory=Counter)
    buckets: Counter[float] = field(default_factory=Counter)  # upper bound (s) -> cumulative count of successes

    def minus(self, before: VersionCounts) -> VersionCounts:
        return VersionCounts(by_status=self.by_status - before.by_status, buckets=self.buckets - before.buckets)

    @property
    def requests(self) -> int:
        return sum(self.by_status.values())

    @property
    def succeeded(self) -> int:
        return self.by_status.get("OK", 0)

    def p99_ms(self) -> float | None:
        """The 99th percentile of the successful requests' latency (Prometheus' ``histogram_quantile``)."""
        bounds = sorted(self.buckets)
        total = self.buckets.get(math.inf, 0)
        if not total:
            return None
        rank, lower, below = 0.99 * total, 0.0, 0
        for bound in bounds:
            count = self.buckets[bound]
            if count >= rank:
                if math.isinf(bound):
                    return lower * 1000.0
                return (lower + (bound - lower) * (rank - below) / max(count - below, 1)) * 1000.0
            lower, below = bound, count
        return lower * 1000.0


def parse_metrics(text: str, model: str) -> dict[int, VersionCounts]:
    """``model``'s predict/classify/regress requests per version from one instance's Prometheus page."""
    counts: dict[int, VersionCounts] = defaultdict(VersionCounts)
    for line in text.splitlines():
        sample = _SAMPLE.match(line)
        if not sample:
            continue
        name, raw_labels, value = sample.groups()
        labels = dict(_LABEL.findall(raw_labels))
        if labels.get("model_name") != model or labels.get("API") not in PREDICTING_APIS or not labels.get("version"):
            continue
        version = counts[int(labels["version"])]
        if name == "runway_serving_request_count":
            version.by_status[labels["status"]] += int(float(value))
        elif name == "runway_serving_request_latency_seconds_bucket":
            version.buckets[float(labels["le"])] += int(float(value))  # float("+Inf") is inf
    return counts


def scrape(rest_urls: Iterable[str], model: str, *, timeout_s: float = 5.0) -> dict[str, dict[int, VersionCounts]]:
    """Each instance's counts (by REST URL); an instance that does not answer is left out (and so not judged)."""
    found = {}
    for url in rest_urls:
        try:
            with urllib.request.urlopen(url + PROMETHEUS_PATH, timeout=timeout_s) as answer:
                found[url] = parse_metrics(answer.read().decode(), model)
        except OSError:
            continue
    return found


def interval_counts(
    before: dict[str, dict[int, VersionCounts]], after: dict[str, dict[int, VersionCounts]], version: int
) -> VersionCounts:
    """What ``version`` answered between two scrapes, over the instances in both (a restarted one counts anew)."""
    total = VersionCounts()
    for url, now in after.items():
        current = now.get(version, VersionCounts())
        earlier = before.get(url, {}).get(version, VersionCounts())
        restarted = current.requests < earlier.requests
        delta = current if restarted else current.minus(earlier)
        total.by_status.update(delta.by_status)
        total.buckets.update(delta.buckets)
    return total


def warm_up(urls: list[str], model: str, version: int, *, wait_s: float) -> dict[str, dict[int, VersionCounts]]:
    """Wait (at most ``wait_s``) until every instance has answered ``WARM_UP_REQUESTS`` mirrored requests of the
    candidate, and return the counts then: a version's first requests on an instance pay for its graph's first run,
    which clients of a promoted version never see (the analysis judges what they would)."""
    deadline = time.monotonic() + wait_s
    while True:
        counts = scrape(urls, model)
        if time.monotonic() > deadline or all(
            per_version.get(version, VersionCounts()).requests >= WARM_UP_REQUESTS for per_version in counts.values()
        ):
            return counts
        time.sleep(0.2)


# -- the answers, from the request logs ----------------------------------------------------------------------------


def answer_value(predictions: dict[str, Any]) -> float | None:
    """One number per answer: the first output's first value (a probability, a score, a regression)."""
    for name in sorted(predictions):
        value = predictions[name]
        while isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def paired_answers(rows: Iterable[Any], *, stable: int, candidate: int) -> tuple[list[float], list[float]]:
    """The two versions' answers to the same requests: each candidate row with a stable row of the same features."""
    waiting: dict[str, list[float]] = defaultdict(list)
    candidate_rows: list[tuple[str, float]] = []
    for row in rows:
        value = answer_value(row.predictions)
        if value is None:
            continue
        key = json.dumps(row.features, sort_keys=True, default=repr)
        if row.version == stable:
            waiting[key].append(value)
        elif row.version == candidate:
            candidate_rows.append((key, value))
    ours, theirs = [], []
    for key, value in candidate_rows:
        if waiting[key]:
            theirs.append(waiting[key].pop())
            ours.append(value)
    return theirs, ours


def js_divergence(first: list[float], second: list[float], *, bins: int = 10) -> float:
    """Jensen-Shannon divergence (base 2: 0 alike, 1 disjoint) of two samples' histograms over their joint range."""
    low, high = min(first + second), max(first + second)
    if high - low < 1e-12:
        return 0.0
    if low >= 0.0 and high <= 1.0:
        low, high = 0.0, 1.0  # probabilities: fixed buckets, as TFDV's would be

    def histogram(values: list[float]) -> list[float]:
        counts = Counter(min(int((v - low) / (high - low) * bins), bins - 1) for v in values)
        return [counts.get(i, 0) / len(values) for i in range(bins)]

    p, q = histogram(first), histogram(second)
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]

    def kl(x: list[float]) -> float:
        return sum(a * math.log2(a / b) for a, b in zip(x, m, strict=True) if a > 0)

    return (kl(p) + kl(q)) / 2
