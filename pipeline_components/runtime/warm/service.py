"""``python -m pipeline_components.runtime.warm serve``: check the folder, preload the runtime once, serve.

Started by the orchestrator on demand (``orchestration/warm_service.py``), never by hand. The module itself
imports no TensorFlow; only ``--preload`` does, which lets the protocol be tested with a light preload.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path

from pipeline_components.runtime.warm.server import WarmServer, log
from pipeline_components.warm_protocol import ENTRY_POINTS, UnsafeRuntimeFolderError, check_private_folder

DEFAULT_PRELOAD = (
    "tensorflow",
    "tfx.v1",
    "tensorflow_data_validation",
    "tensorflow_model_analysis",
    "tensorflow_transform",
    "apache_beam",
    "ml_metadata",
    "pipeline_components.runtime.node",
    "pipeline_components.reports.node_page",
)


def preload(modules: list[str]) -> dict[str, float]:
    """Import ``modules`` once (seconds per module).

    Raises:
        RuntimeError: the imports left a thread running: it would be missing in every forked child, and could
            hold a lock across the fork.
    """
    seconds: dict[str, float] = {}
    for name in modules:
        start = time.monotonic()
        __import__(name)
        seconds[name] = round(time.monotonic() - start, 2)
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:
        raise RuntimeError(f"preloading {modules} started threads {threads}; forking children would not be safe")
    return seconds


def main(argv: list[str] | None = None, *, entry_points: tuple[str, ...] = ENTRY_POINTS) -> int:
    """Serve until stopped, idle or retired; 2 when the socket's folder is not private.

    Args:
        argv: the command line (default ``sys.argv[1:]``).
        entry_points: the modules a request may run (tests add a fake node to the project's own).
    """
    p = argparse.ArgumentParser(prog="python -m pipeline_components.runtime.warm", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="preload the runtime and serve node requests on a Unix socket")
    s.add_argument("--socket", required=True, help="socket path (its folder must be this user's, mode 0700)")
    s.add_argument("--max-parallel", type=int, default=os.cpu_count() or 1)
    s.add_argument("--pidfile", help="write this server's pid here (removed when it stops)")
    s.add_argument("--idle-timeout", type=float, default=0.0, help="stop after this many idle seconds (0: never)")
    s.add_argument(
        "--preload",
        default=os.environ.get("RUNWAY_WARM_PRELOAD", ",".join(DEFAULT_PRELOAD)),
        help="comma-separated modules to import once (default: TFX, TensorFlow, TFDV, TFMA, Beam, the node runner)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        check_private_folder(Path(args.socket).parent)
    except UnsafeRuntimeFolderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    modules = [m for m in args.preload.split(",") if m.strip()]
    start = time.monotonic()
    # Beam logs one line per unsupported type hint at import: noise in the service's log.
    logging.getLogger("apache_beam.typehints").setLevel(logging.WARNING)
    preloaded = preload(modules)
    log.info("preloaded %d modules in %.1f s: %s", len(modules), time.monotonic() - start, preloaded)
    server = WarmServer(
        socket_path=args.socket,
        max_parallel=args.max_parallel,
        preloaded=preloaded,
        idle_timeout=args.idle_timeout,
        pidfile=args.pidfile,
        entry_points=entry_points,
    )
    server.bind()
    server.serve_forever()
    return 0
