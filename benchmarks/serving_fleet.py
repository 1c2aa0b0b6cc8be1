"""Benchmark of the serving fleet through its load balancer: REST vs gRPC, batch 1 vs 64, and push -> AVAILABLE.

    nice -n 10 .venv/bin/python benchmarks/serving_fleet.py            # ~4 minutes; writes benchmarks/results/

What it does, in one run so that the variants share the machine's conditions:

1. starts a local fleet (``runway fleet up``'s code: N model servers behind nginx, loopback, free ports) under a
   temporary RUNWAY_HOME, puts the real flights model (the newest pushed version under the model store) in as
   version 1 and rolls it out to ``stable``;
2. latency and throughput: for each protocol (REST, gRPC) x batch size (1, 64) x client concurrency, a closed
   loop of client processes (``pipeline_components.client.load``) sends real December flights through nginx to
   ``labels/stable`` for ``--duration`` seconds; configurations alternate in order over ``--rounds`` rounds
   (ABCD, DCBA...) and the report keeps every round, so noise shows;
3. push -> fleet-wide AVAILABLE: ``--pushes`` times, a new version is written to the store (atomic copy), loaded
   next to stable on every instance (HandleReloadConfigRequest), and waited for until GetModelStatus says
   AVAILABLE on every instance; then the rest of the rollout (canary, promote, retire) is timed too.

Figures: JSON in ``benchmarks/results/serving_fleet.json`` and a Markdown table on stdout (copied into
benchmarks/README.md by hand). Load average and CPU count are recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CHECKOUT))

from pipeline_components.cli.commands.serving import rows_from_span  # noqa: E402
from pipeline_components.client.load import LoadGenerator  # noqa: E402
from pipeline_components.fleet.local import FleetSpec, LocalFleet  # noqa: E402
from pipeline_components.fleet.rollout import Rollout, RolloutOptions  # noqa: E402
from pipeline_components.fleet.store import ModelStore  # noqa: E402
from pipeline_components.ports import free_ports  # noqa: E402
from pipeline_components.settings import Settings  # noqa: E402

MODEL = "flights_delay"


def newest_version(store: Path) -> Path:
    versions = sorted(
        (p for p in (store / MODEL).glob("[0-9]*") if (p / "saved_model.pb").is_file()), key=lambda p: int(p.name)
    )
    if not versions:
        raise SystemExit(f"no pushed {MODEL} under {store}; run `make run` (or `runway run flights`) first")
    return versions[-1]


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def measure_load(
    state: Any, rows: list[dict[str, Any]], protocol: str, batch: int, processes: int, duration: float
) -> dict[str, Any]:
    load = LoadGenerator(
        rest_url=state.rest_url,
        grpc_target=state.grpc_target,
        model=MODEL,
        rows=rows,
        processes=processes,
        protocols=[protocol],  # type: ignore[list-item]
        duration_s=duration,
        batch=batch,
        timeout_s=30.0,
    )
    load.start(start_delay_s=5.0)
    time.sleep(5.0 + duration)
    report = load.stop()
    part = report.protocols[protocol]
    return {
        "protocol": protocol,
        "batch": batch,
        "processes": processes,
        "requests": part.requests,
        "errors": part.errors,
        "throughput_rps": part.throughput_rps,
        "examples_per_s": part.examples_per_s,
        "p50_ms": part.p50_ms,
        "p90_ms": part.p90_ms,
        "p99_ms": part.p99_ms,
        "max_ms": part.max_ms,
        "load_average": load_average(),
    }


def measure_pushes(
    fleet_state: Any, settings: Settings, store: ModelStore, source: Path, pushes: int
) -> list[dict[str, Any]]:
    results = []
    for index in range(pushes):
        version = 2 + index
        rollout = Rollout(
            store=store,
            fleet=fleet_state,
            model=MODEL,
            home=settings.home,
            options=RolloutOptions(verify=False, available_timeout_s=300.0),
            say=lambda line: None,
        )
        try:
            start = time.perf_counter()
            store.write_version(MODEL, version, source)
            written = time.perf_counter()
            rollout.load(version)
            reloaded = time.perf_counter()
            rollout.wait_available()
            available = time.perf_counter()
            rollout.label_canary()
            rollout.promote()
            rollout.retire()
            stable = time.perf_counter()
        finally:
            rollout.close()
        results.append(
            {
                "version": version,
                "write_s": round(written - start, 3),
                "reload_requests_s": round(reloaded - written, 3),
                "push_to_available_s": round(available - start, 3),
                "push_to_stable_s": round(stable - start, 3),
                "load_average": load_average(),
            }
        )
        print(
            f"  push {version}: AVAILABLE on every instance after {available - start:.2f} s, "
            f"stable after {stable - start:.2f} s",
            flush=True,
        )
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| protocol | batch | client processes | round | req/s | examples/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["load"]:
        lines.append(
            f"| {row['protocol']} | {row['batch']} | {row['processes']} | {row['round']} | "
            f"{row['throughput_rps']:.0f} | {row['examples_per_s']:.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
            f"{row['errors']} |"
        )
    lines += [
        "",
        "| push | write s | reload requests s | push -> AVAILABLE everywhere s | push -> stable s |",
        "|---|---|---|---|---|",
    ]
    for row in results["pushes"]:
        lines.append(
            f"| {row['version']} | {row['write_s']:.2f} | {row['reload_requests_s']:.2f} | "
            f"{row['push_to_available_s']:.2f} | {row['push_to_stable_s']:.2f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of timed load per configuration")
    parser.add_argument("--concurrency", default="1,4", help="client processes per configuration, comma separated")
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pushes", type=int, default=3)
    parser.add_argument("--span", type=int, default=12, help="prepared span whose real rows are sent")
    parser.add_argument("--out", type=Path, default=CHECKOUT / "benchmarks" / "results" / "serving_fleet.json")
    args = parser.parse_args()

    real = Settings.from_env()
    source = newest_version(real.model_store)
    rows, _ = rows_from_span(real, "flights", args.span, 64)
    home = Path(tempfile.mkdtemp(prefix="runway-bench-"))
    settings = Settings.from_env({"RUNWAY_HOME": str(home), "RUNWAY_RUNTIME_PYTHON": str(real.runtime_python)})
    ports = free_ports(2 + 2 * args.instances)
    spec = FleetSpec(
        instances=args.instances,
        rest_port=ports[0],
        grpc_port=ports[1],
        instance_ports=[(ports[2 + 2 * i], ports[3 + 2 * i]) for i in range(args.instances)],
    )
    fleet = LocalFleet(settings, say=print)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average_before": load_average()},
        "model": {"name": MODEL, "source": str(source)},
        "settings": vars(args) | {"out": str(args.out)},
    }
    started = time.perf_counter()
    try:
        state = fleet.up(spec)
        results["fleet"] = {"instances": args.instances, "server": state.server, "load_balancer": "nginx"}
        store = ModelStore(settings.model_store)
        store.write_version(MODEL, 1, source)
        first = Rollout(store=store, fleet=state, model=MODEL, home=settings.home, options=RolloutOptions(verify=False))
        first.run(1)
        first.close()
        configurations = [
            (protocol, int(batch), int(processes))
            for processes in args.concurrency.split(",")
            for batch in args.batches.split(",")
            for protocol in ("rest", "grpc")
        ]
        results["load"] = []
        for round_index in range(args.rounds):
            order = configurations if round_index % 2 == 0 else list(reversed(configurations))
            for protocol, batch, processes in order:
                row = measure_load(state, rows, protocol, batch, processes, args.duration) | {"round": round_index + 1}
                results["load"].append(row)
                print(
                    f"  {protocol:4} batch {batch:2} x{processes}: {row['throughput_rps']:.0f} req/s, "
                    f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, {row['errors']} errors",
                    flush=True,
                )
        results["pushes"] = measure_pushes(state, settings, store, source, args.pushes)
    finally:
        fleet.down()
        shutil.rmtree(home, ignore_errors=True)
    results["machine"]["load_average_after"] = load_average()
    results["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
