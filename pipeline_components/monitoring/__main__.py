"""``python -m pipeline_components.monitoring``: monitor one window of served traffic (a DAG task's command).

    python -m pipeline_components.monitoring --pipeline flights \\
        --log-prefix /var/log/runway/flights_delay/flights_delay \\
        --since 2026-12-01T00:00:00Z --until 2026-12-02T00:00:00Z --out var/monitoring/flights/<run> \\
        [--previous var/monitoring/flights/<previous run>]

Without ``--since`` the window starts where the previous one (``--previous``) ended; without ``--until`` it ends
now.

Prints the result (``result.json``'s content) as one JSON line on stdout, with ``report``: the path of
``report.html`` under RUNWAY_HOME when ``--out`` is inside it (``reports/<pipeline>/<run>/...`` is what Airflow's
plugin serves). Exit status: 0 the window was judged
(``alert`` in the result says whether a threshold was crossed); 99 (``boundary.EXIT_SKIPPED``) no logged traffic in
the window (not an alert: the DAG's task is skipped);
2 any other error (the message on stderr says what to do).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pipeline_components.boundary import EXIT_SKIPPED
from pipeline_components.errors import NoTrafficError, RunwayError
from pipeline_components.monitoring.report import PAGE_FILE, RESULT_FILE

EXIT_NO_TRAFFIC = EXIT_SKIPPED  # the task is skipped: nothing to judge is not a failure


def _secs(text: str) -> int:
    """Seconds since the epoch, or an ISO 8601 time (UTC unless it says otherwise)."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a time: give seconds since the epoch or ISO 8601 (2026-12-01T00:00:00Z)"
        ) from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def parser() -> argparse.ArgumentParser:
    """The command line's arguments."""
    p = argparse.ArgumentParser(prog="python -m pipeline_components.monitoring", description=__doc__.split("\n")[0])
    p.add_argument("--pipeline", required=True, help="the pipeline whose served model is monitored")
    p.add_argument("--log-prefix", required=True, help="the request log's filename_prefix (logging_config)")
    p.add_argument(
        "--since", type=_secs, help="window start, included (epoch seconds or ISO 8601); default: the previous end"
    )
    p.add_argument("--until", type=_secs, help="window end, excluded (epoch seconds or ISO 8601); default: now")
    p.add_argument("--out", required=True, type=Path, help="output folder: result.json, report.md, plot, stats")
    p.add_argument("--previous", type=Path, help="the previous window's output folder (drift baseline)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one window; the exit status as the module docstring says."""
    args = parser().parse_args(argv)
    args.until = int(time.time()) if args.until is None else args.until
    if args.since is None:
        previous = args.previous / RESULT_FILE if args.previous is not None else None
        if previous is None or not previous.is_file():
            print("error: give --since, or --previous with the previous window's result.json", file=sys.stderr)
            return 2
        args.since = int(json.loads(previous.read_text())["window"]["until"])  # windows follow one another
    if args.until <= args.since:
        print(f"error: --until ({args.until}) must be after --since ({args.since})", file=sys.stderr)
        return 2
    from pipeline_components.config import find_pipeline_configs, load_pipeline_config
    from pipeline_components.metadata.reader import RunReader
    from pipeline_components.monitoring.served import Window
    from pipeline_components.monitoring.window import monitor_window
    from pipeline_components.settings import Settings

    settings = Settings.from_env()
    try:
        configs = find_pipeline_configs(settings.config_dir)
        if args.pipeline not in configs:
            raise RunwayError(f"no pipeline '{args.pipeline}' in {settings.config_dir} (known: {sorted(configs)})")
        result = monitor_window(
            config=load_pipeline_config(configs[args.pipeline]),
            reader=RunReader.for_pipeline(settings, args.pipeline),
            log_prefix=args.log_prefix,
            window=Window(args.since, args.until),
            out_dir=args.out,
            previous_dir=args.previous,
        )
    except NoTrafficError as error:
        print(f"no traffic: {error}", file=sys.stderr)
        return EXIT_NO_TRAFFIC
    except RunwayError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    page = (args.out / PAGE_FILE).resolve()
    if page.is_relative_to(settings.home.resolve()):
        # What a task links: the page's path under RUNWAY_HOME (the Airflow plugin serves $RUNWAY_HOME/reports).
        result["report"] = str(page.relative_to(settings.home.resolve()))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
