"""Benchmark: what request logging costs the model server's latency, side by side with no logging (issue 20).

    nice -n 10 .venv/bin/python benchmarks/request_logging.py     # ~8 minutes; writes benchmarks/results/
    .venv/bin/python benchmarks/request_logging.py --quick        # < 1 minute smoke check; writes to /tmp

Issue 20's goal: p99 latency with logging within 5 % of no logging. In one run, so that the variants share the
machine's conditions, it:

1. builds the flights-shaped tiny SavedModel (``tests/fleet/tiny_models.py`` ``flights_shaped``: the flights model's
   ``serving_default`` inputs, a trivial made-up answer), so a logged request has the real flights request's shape
   and what differs between the variants is the server's own work;
2. starts one runway model server (``scripts/runway-model-server``, same flags) per variant: ``off`` (no
   ``logging_config``), ``1.0`` (every request logged: the worst case), ``0.05``, and ``off2``, a second server
   without logging: off vs off2 is an A/A comparison that shows how far p99 moves with nothing changed. No nginx:
   the client talks to the server directly, so what is measured is the server's logging;
3. per protocol (REST, gRPC) x variant, a closed loop of client processes (``pipeline_components.client.load``,
   batch 1) sends the 40 real December flights of ``tests/fleet/data/flights_span_12_sample.csv`` for
   ``--duration`` s, one server loaded at a time; the order alternates over ``--rounds`` (off 1.0 0.05 off2 | off2
   0.05 1.0 off | ...) so drift in the machine's load falls on every variant alike. After each window it waits until the
   logging server's writer has drained (its counters stop moving), and reads the server's Prometheus metrics:
   ``runway_serving_request_log_count`` by outcome (logged, dropped, failed), ``runway_serving_request_log_bytes``,
   and the server process's CPU time (/proc), its log writer's included.

How to read ``benchmarks/results/request_logging.{json,md,svg}``: per protocol and variant, medians over rounds of
each window's p50, p99, max and throughput; the ratio of median p99s to ``off`` and the median of each round's own
ratio (the paired one: those windows ran seconds apart; the verdict uses it). Every window is kept in the JSON and
drawn in the SVG: on a shared 2-CPU machine one window's p99 moves by more than 5 % between rounds, hence medians.
The Markdown's "Why" section is written by hand after the recorded run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CHECKOUT))

from pipeline_components.client.client import Protocol  # noqa: E402
from pipeline_components.client.load import LoadGenerator  # noqa: E402
from pipeline_components.ports import free_ports  # noqa: E402
from pipeline_components.processes import log_tail, stop_pid, wait_for  # noqa: E402
from pipeline_components.settings import Settings  # noqa: E402

MODEL = "flights_delay"
SAMPLE = CHECKOUT / "tests" / "fleet" / "data" / "flights_span_12_sample.csv"
TEXT_FEATURES = ("carrier", "origin", "dest", "month_name")  # the served model's string inputs
LABEL = "is_delayed"
METRICS_PATH = "/monitoring/prometheus/metrics"
RESULTS = CHECKOUT / "benchmarks" / "results"
GOAL = 1.05  # issue 20: p99 with logging within 5 % of no logging
CONTROL = "off2"  # a second server without logging: off vs off2 is the A/A comparison, i.e. the noise


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def flights_rows() -> list[dict[str, Any]]:
    """The sample's flights as a client sends them: text where the model takes text, numbers otherwise."""

    def number(text: str) -> int | float:
        try:
            return int(text)
        except ValueError:
            return float(text)

    with SAMPLE.open(newline="") as handle:
        return [
            {name: value if name in TEXT_FEATURES else number(value) for name, value in row.items() if name != LABEL}
            for row in csv.DictReader(handle)
        ]


def build_model(settings: Settings, root: Path) -> Path:
    """The flights-shaped tiny SavedModel as version 1 under ``root/models/flights_delay``."""
    built = root / "tiny"
    done = subprocess.run(
        [str(settings.runtime_python), str(CHECKOUT / "tests" / "fleet" / "tiny_models.py"), str(built)],
        env={**os.environ, "PYTHONPATH": str(CHECKOUT), "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,  # TensorFlow's start-up chatter; shown only when the build fails
    )
    if done.returncode != 0:
        raise SystemExit(f"building the tiny models failed:\n{done.stderr.decode()[-3000:]}")
    base = root / "models" / MODEL
    shutil.copytree(built / "flights_shaped", base / "1")
    return base


class Server:
    """One runway model server serving the model, with or without request logging."""

    def __init__(self, *, name: str, rate: float | None, base: Path, root: Path, settings: Settings) -> None:
        self.name = name
        self.rate = rate
        self.dir = root / f"server-{name}"
        self.dir.mkdir(parents=True)
        grpc_port, rest_port = free_ports(2)
        self.rest_url = f"http://127.0.0.1:{rest_port}"
        self.grpc_target = f"127.0.0.1:{grpc_port}"
        self.log_prefix = self.dir / "request_logs" / MODEL
        logging = (
            ""
            if rate is None
            else f'logging_config {{ log_collector_config {{ type: "tfrecord" filename_prefix: "{self.log_prefix}" }} '
            f"sampling_config {{ sampling_rate: {rate} }} }}"
        )
        config = self.dir / "models.config"
        config.write_text(
            f'model_config_list {{ config {{ name: "{MODEL}" base_path: "{base}" model_platform: "tensorflow" '
            f"{logging} }} }}\n"
        )
        monitoring = self.dir / "monitoring.config"
        monitoring.write_text(f'prometheus_config {{ enable: true path: "{METRICS_PATH}" }}\n')
        self.argv = [str(CHECKOUT / "scripts" / "runway-model-server"), f"--port={grpc_port}"]
        self.argv += [f"--rest_api_port={rest_port}", f"--model_config_file={config}"]
        self.argv += [f"--monitoring_config_file={monitoring}"]  # the request log's counters
        self.output = self.dir / "server.log"
        self.env = {**os.environ, "RUNWAY_RUNTIME_PYTHON": str(settings.runtime_python), "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env)

    def wait_available(self, timeout_s: float = 180.0) -> None:
        def available() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise SystemExit(f"model server {self.name} exited:\n{log_tail(self.output)}")
            try:
                with urllib.request.urlopen(f"{self.rest_url}/v1/models/{MODEL}", timeout=2) as response:
                    return "AVAILABLE" in response.read().decode()
            except OSError:
                return False

        if not wait_for(available, timeout=timeout_s, interval=0.2):
            tail = log_tail(self.output)
            raise SystemExit(f"model server {self.name} not AVAILABLE after {timeout_s:.0f} s:\n{tail}")

    def counters(self) -> dict[str, float]:
        """The request log's counters for the model (every version together): logged, dropped, failed, bytes."""
        with urllib.request.urlopen(self.rest_url + METRICS_PATH, timeout=10) as response:
            text = response.read().decode()
        found = {"logged": 0.0, "dropped": 0.0, "failed": 0.0, "bytes": 0.0}
        for line in text.splitlines():
            if f'model_name="{MODEL}"' not in line:
                continue
            if line.startswith("runway_serving_request_log_count{"):
                outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
                found[outcome] = found.get(outcome, 0.0) + float(line.split()[-1])
            elif line.startswith("runway_serving_request_log_bytes{"):
                found["bytes"] += float(line.split()[-1])
        return found

    def settled_counters(self, timeout_s: float = 60.0) -> dict[str, float]:
        """The counters once the writer has drained (unchanged over half a second)."""
        previous, deadline = self.counters(), time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(0.5)
            current = self.counters()
            if current == previous:
                break
            previous = current
        return previous

    def cpu_seconds(self) -> float:
        """The server process's CPU time so far (user + system, every thread: the log writer's included)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process is not None:
            stop_pid(self.process.pid)
            self.process.wait(timeout=30)


def measure(server: Server, protocol: Protocol, load: dict[str, Any]) -> dict[str, Any]:
    """One window of closed-loop load on one server; the request log's counters over the window.

    Args:
        server: the server under load (the others idle meanwhile).
        protocol: ``rest`` or ``grpc``.
        load: the ``LoadGenerator`` arguments every window shares (model, rows, processes, duration...).
    """
    before = server.counters()
    cpu_before = server.cpu_seconds()
    generator = LoadGenerator(rest_url=server.rest_url, grpc_target=server.grpc_target, protocols=[protocol], **load)
    generator.start(start_delay_s=2.0)  # spawned clients import, connect and warm up before the clock starts
    time.sleep(2.0 + load["duration_s"])
    part = generator.stop().protocols[protocol]
    after = server.settled_counters()
    cpu = server.cpu_seconds() - cpu_before  # the writer's draining after the window included
    return {
        "variant": server.name,
        "sampling_rate": server.rate,
        "protocol": protocol,
        "processes": load["processes"],
        "requests": part.requests,
        "errors": part.errors,
        "throughput_rps": part.throughput_rps,
        **{key: getattr(part, key) for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms")},
        "server_cpu_ms_per_request": round(cpu * 1000 / max(1, part.requests), 3),
        # Over the window and its warm-up requests (3 a client process), so logged can exceed requests slightly.
        "log": {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after},
        "load_average": load_average(),
    }


MEDIANS = ("p50_ms", "p99_ms", "max_ms", "throughput_rps", "server_cpu_ms_per_request")


def summarize(windows: list[dict[str, Any]], variants: list[str], protocols: list[str]) -> list[dict[str, Any]]:
    """Per protocol and variant: medians over rounds, the ratios to ``off``, the requests and the log's totals."""
    summary: list[dict[str, Any]] = []
    for protocol in protocols:
        for name in variants:
            mine = [w for w in windows if w["protocol"] == protocol and w["variant"] == name]
            row: dict[str, Any] = {"protocol": protocol, "variant": name, "rounds": len(mine)}
            row |= {key: statistics.median(w[key] for w in mine) for key in MEDIANS}
            row |= {key: sum(w[key] for w in mine) for key in ("requests", "errors")}
            row |= {
                key: int(sum(w["log"].get(key, 0) for w in mine)) for key in ("logged", "dropped", "failed", "bytes")
            }
            row["p99_per_round"] = [w["p99_ms"] for w in mine]
            if name == variants[0]:  # "off": the baseline, measured in the same rounds
                base, base_windows = row, mine
            paired = [m["p99_ms"] / b["p99_ms"] for m, b in zip(mine, base_windows, strict=True) if b["p99_ms"]]
            row["p99_ratio"] = round(row["p99_ms"] / base["p99_ms"], 3)
            row["p99_ratio_paired"] = round(statistics.median(paired), 3)  # each round's own ratio, then the median
            row["p99_ratio_min"], row["p99_ratio_max"] = round(min(paired), 3), round(max(paired), 3)
            row["p50_ratio"] = round(row["p50_ms"] / base["p50_ms"], 3)
            summary.append(row)
    return summary


def verdicts(summary: list[dict[str, Any]]) -> list[str]:
    """One line per logged variant: the paired p99 ratio against the goal, beside the A/A control's (the noise)."""
    control = {row["protocol"]: row for row in summary if row["variant"] == CONTROL}
    lines = []
    for row in (row for row in summary if not row["variant"].startswith("off")):
        ratio, aa = row["p99_ratio_paired"], control.get(row["protocol"])
        met = "met" if ratio <= GOAL else f"not met, by {(ratio - GOAL) * 100:.1f} points"
        noise = f"; A/A control (no logging either side): {aa['p99_ratio_paired']:.3f} x" if aa else ""
        lines.append(
            f"- {row['protocol']}, sampling rate {row['variant']}: p99 {ratio:.3f} x no logging (paired; per round "
            f"{row['p99_ratio_min']:.2f} to {row['p99_ratio_max']:.2f}), p50 {row['p50_ratio']:.3f} x: "
            f"goal (<= {GOAL:.2f}) {met}{noise}"
        )
    return lines


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Request logging overhead on the model server's latency (issue 20)",
        "",
        f"{results['started']} on {results['machine']['node']}, {results['machine']['cpus']} CPUs, load average "
        f"{results['machine']['load_average_before']} before, {results['machine']['load_average_after']} after; "
        f"`{results['command']}`",
        "",
        f"runway model server direct (no nginx), flights-shaped tiny SavedModel, real December flights, batch 1, "
        f"{results['settings']['processes']} client process(es) per window, {results['settings']['duration']} s "
        f"windows, {results['settings']['rounds']} rounds, variants interleaved. Medians over rounds; ratios to `off`.",
        "",
        "| protocol | logging | p50 ms | p99 ms | max ms | req/s | p99 ratio | p99 ratio (paired) | p50 ratio "
        "| server CPU ms/request | logged | dropped | failed | log MB | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["summary"]:
        lines.append(
            f"| {row['protocol']} | {row['variant']} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['max_ms']:.1f} "
            f"| {row['throughput_rps']:.0f} | {row['p99_ratio']:.3f} | {row['p99_ratio_paired']:.3f} "
            f"| {row['p50_ratio']:.3f} | {row['server_cpu_ms_per_request']:.3f} "
            f"| {row['logged']} | {row['dropped']} | {row['failed']} "
            f"| {row['bytes'] / 1e6:.2f} | {row['errors']} |"
        )
    lines += ["", "## Verdict (goal: p99 within 5 % of no logging)", "", *verdicts(results["summary"]), ""]
    lines += ["p99 ms of every window, in round order (the noise a single window has):", ""]
    for row in results["summary"]:
        p99s = ", ".join(f"{w:.2f}" for w in row["p99_per_round"])
        lines.append(f"- {row['protocol']}, logging {row['variant']}: {p99s}")
    lines += ["", "![p50 and p99 of every window](request_logging.svg)"]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """p50 and p99 of every window per protocol and variant (dots), the medians (bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protocols = results["settings"]["protocols"]
    variants = results["settings"]["variants"]
    figure, axes = plt.subplots(1, len(protocols), figsize=(5 * len(protocols), 4), squeeze=False)
    for axis, protocol in zip(axes[0], protocols, strict=True):
        for index, name in enumerate(variants):
            mine = [w for w in results["windows"] if w["protocol"] == protocol and w["variant"] == name]
            for key, color in (("p50_ms", "tab:blue"), ("p99_ms", "tab:red")):
                values = [w[key] for w in mine]
                axis.scatter([index] * len(values), values, color=color, alpha=0.5, s=16)
                axis.hlines(statistics.median(values), index - 0.3, index + 0.3, color=color)
        axis.set_xticks(range(len(variants)), [f"logging {name}" for name in variants])
        axis.set_title(f"{protocol}: p99 (red), p50 (blue) of each window; bar: median")
        axis.set_ylabel("latency ms")
        axis.set_ylim(bottom=0)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of timed load per window")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--processes", type=int, default=2, help="client processes per window")
    parser.add_argument("--variants", default=f"off,1.0,0.05,{CONTROL}", help="off first, then rates or off2")
    parser.add_argument("--protocols", default="rest,grpc")
    parser.add_argument("--quick", action="store_true", help="smoke check: off and 1.0, 1 round of 3 s, to /tmp")
    parser.add_argument("--out", type=Path, help="folder for request_logging.{json,md,svg}")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds, args.variants, args.processes = 3.0, 1, "off,1.0", 1
    out: Path = args.out or (Path(tempfile.gettempdir()) / "request_logging" if args.quick else RESULTS)
    variants = args.variants.split(",")
    protocols = args.protocols.split(",")
    if variants[0] != "off":
        raise SystemExit("--variants must start with 'off' (the baseline)")

    settings = Settings.from_env()
    rows = flights_rows()
    root = Path(tempfile.mkdtemp(prefix="runway-request-logging-"))
    results: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "command": " ".join(["python", "benchmarks/request_logging.py", *sys.argv[1:]]),
        "machine": {"node": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "model": "tests/fleet/tiny_models.py flights_shaped",
        "rows": f"{len(rows)} flights of {SAMPLE.relative_to(CHECKOUT)}",
        "settings": {"duration": args.duration, "rounds": args.rounds, "processes": args.processes}
        | {"variants": variants, "protocols": protocols},
    }
    results["machine"]["load_average_before"] = load_average()  # and after, below
    started = time.perf_counter()
    servers: dict[str, Server] = {}
    windows: list[dict[str, Any]] = []
    try:
        base = build_model(settings, root)
        for name in variants:
            rate = None if name.startswith("off") else float(name)
            servers[name] = Server(name=name, rate=rate, base=base, root=root, settings=settings)
            servers[name].start()
        for server in servers.values():
            server.wait_available()
        load = {"model": MODEL, "rows": rows, "processes": args.processes, "duration_s": args.duration}
        load |= {"version": 1, "timeout_s": 30.0}  # batch 1, the client's default retry policy
        configurations = [(protocol, name) for protocol in protocols for name in variants]
        for round_index in range(args.rounds):
            order = configurations if round_index % 2 == 0 else list(reversed(configurations))
            for protocol, name in order:
                window = measure(servers[name], protocol, load)
                window["round"] = round_index + 1
                windows.append(window)
                print(
                    f"  round {round_index + 1} {protocol:4} logging {name:4}: {window['throughput_rps']:.0f} req/s, "
                    f"p50 {window['p50_ms']:.2f} ms, p99 {window['p99_ms']:.2f} ms, {window['errors']} errors, "
                    f"logged {window['log'].get('logged', 0):.0f}, dropped {window['log'].get('dropped', 0):.0f}",
                    flush=True,
                )
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
    results["windows"] = windows
    results["summary"] = summarize(windows, variants, protocols)
    results["machine"]["load_average_after"] = load_average()
    results["wall_s"] = round(time.perf_counter() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "request_logging.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "request_logging.md").write_text(markdown(results))
    plot(results, out / "request_logging.svg")
    print("\n".join(verdicts(results["summary"])))
    print(f"wrote {out}/request_logging.{{json,md,svg}} in {results['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
