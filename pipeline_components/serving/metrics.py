"""Prometheus metrics: TF Serving's series, plus this server's per-version ones.

TF Serving's exporter writes ``/tensorflow/serving/request_count`` as ``:tensorflow:serving:request_count`` (slashes
become colons); the same names and labels are kept here so dashboards built on TF Serving work unchanged:

- ``:tensorflow:serving:request_count{model_name,status}``;
- ``:tensorflow:serving:request_latency{model_name,API,entrypoint}`` (histogram, microseconds);
- ``:tensorflow:cc:saved_model:load_attempt_count{model_path,status}`` and ``...:load_latency{model_path}``.

TF Serving has no per-version request series; this server adds ``runway_serving_request_count`` and
``runway_serving_request_latency_seconds`` with ``model_name``, ``version``, ``API``, ``entrypoint`` and ``status``,
and ``runway_serving_model_load_count{model_name,version,outcome}`` for load events.

TF Serving counts nothing of its request logging; this server's request log (``request_log.py``) adds
``runway_serving_request_log_count{model_name,version,outcome}`` (outcome ``logged``, ``dropped`` when the queue
was full, ``failed`` when writing failed) and ``runway_serving_request_log_bytes{model_name,version}`` (written).
"""

from __future__ import annotations

import threading
from collections import defaultdict

Labels = tuple[tuple[str, str], ...]

_US_BUCKETS = (100, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 5_000_000)
_S_BUCKETS = tuple(b / 1e6 for b in _US_BUCKETS)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    pairs = labels + extra
    if not pairs:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in pairs) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1
        self.total += value
        self.count += 1


class Metrics:
    """A thread-safe metrics registry that renders Prometheus' text format."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._histograms: dict[str, dict[Labels, _Histogram]] = defaultdict(dict)
        self._gauges: dict[str, dict[Labels, float]] = defaultdict(dict)

    def _inc(self, name: str, labels: Labels, amount: float = 1.0) -> None:
        self._counters[name][labels] += amount

    def _observe(self, name: str, labels: Labels, value: float, buckets: tuple[float, ...]) -> None:
        histogram = self._histograms[name].get(labels)
        if histogram is None:
            histogram = self._histograms[name][labels] = _Histogram(buckets)
        histogram.observe(value)

    def record_request(
        self, *, model_name: str, version: int | None, api: str, entrypoint: str, code: str, seconds: float
    ) -> None:
        """Count one request and, when it succeeded, its latency (as TF Serving records only successes).

        Args:
            model_name: the model asked for (empty when the path named none).
            version: the version that answered, None when none did.
            api: ``predict``, ``classify``, ``regress``, ``GetModelMetadata``...
            entrypoint: ``REST`` or ``GRPC``.
            code: the status code name, ``OK`` on success.
            seconds: time spent on it.
        """
        tf_status = "OK" if code == "OK" else code
        runway = (
            ("model_name", model_name),
            ("version", "" if version is None else str(version)),
            ("API", api),
            ("entrypoint", entrypoint),
            ("status", code),
        )
        with self._lock:
            self._inc(":tensorflow:serving:request_count", (("model_name", model_name), ("status", tf_status)))
            self._inc("runway_serving_request_count", runway)
            if code == "OK":
                self._observe(
                    ":tensorflow:serving:request_latency",
                    (("model_name", model_name), ("API", api), ("entrypoint", entrypoint)),
                    seconds * 1e6,
                    _US_BUCKETS,
                )
                self._observe("runway_serving_request_latency_seconds", runway[:4], seconds, _S_BUCKETS)

    def record_load(self, *, model_name: str, version: int, path: str, ok: bool, seconds: float) -> None:
        """Count one load attempt of a version, with its outcome and duration."""
        with self._lock:
            self._inc(
                ":tensorflow:cc:saved_model:load_attempt_count",
                (("model_path", path), ("status", "success" if ok else "fail")),
            )
            self._inc(":tensorflow:cc:saved_model:load_latency", (("model_path", path),), seconds * 1e6)
            self._inc(
                "runway_serving_model_load_count",
                (("model_name", model_name), ("version", str(version)), ("outcome", "success" if ok else "fail")),
            )

    def record_request_log(self, *, model_name: str, version: int, outcome: str, written: int = 0) -> None:
        """Count one sampled request's log record: ``logged`` (with the bytes written), ``dropped`` or ``failed``."""
        labels = (("model_name", model_name), ("version", str(version)))
        with self._lock:
            self._inc("runway_serving_request_log_count", (*labels, ("outcome", outcome)))
            if written:
                self._inc("runway_serving_request_log_bytes", labels, written)

    def set_available_versions(self, counts: dict[str, int]) -> None:
        """The number of available versions per model (a gauge, refreshed before each scrape)."""
        with self._lock:
            self._gauges["runway_serving_available_versions"] = {
                (("model_name", name),): float(count) for name, count in counts.items()
            }

    def render(self) -> str:
        """All series in Prometheus' text exposition format."""
        lines: list[str] = []
        with self._lock:
            for name in sorted(self._counters):
                lines.append(f"# TYPE {name} counter")
                for labels, value in sorted(self._counters[name].items()):
                    lines.append(f"{name}{_format(labels)} {_number(value)}")
            for name in sorted(self._gauges):
                lines.append(f"# TYPE {name} gauge")
                for labels, value in sorted(self._gauges[name].items()):
                    lines.append(f"{name}{_format(labels)} {_number(value)}")
            for name in sorted(self._histograms):
                lines.append(f"# TYPE {name} histogram")
                for labels, histogram in sorted(self._histograms[name].items()):
                    for bound, count in zip(histogram.buckets, histogram.counts, strict=True):
                        lines.append(f"{name}_bucket{_format(labels, (('le', _number(bound)),))} {count}")
                    lines.append(f"{name}_bucket{_format(labels, (('le', '+Inf'),))} {histogram.count}")
                    lines.append(f"{name}_sum{_format(labels)} {_number(histogram.total)}")
                    lines.append(f"{name}_count{_format(labels)} {histogram.count}")
        return "\n".join(lines) + "\n"
