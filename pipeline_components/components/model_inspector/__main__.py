"""``python -m pipeline_components.components.model_inspector PATH [--json] [--compare-with PATH] [--html FILE]``.

What ``runway model inspect`` runs in the pipeline runtime environment: prints the report as Markdown (or JSON).
Exit status 0; 1 when ``--compare-with`` finds a breaking change; 2 with ``error: ...`` on stderr when PATH holds no
readable SavedModel. Importing this package does not import TFX (``__init__.py`` loads the component lazily).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline_components.components.model_inspector.contract import compare_signatures, served_version_dir
from pipeline_components.components.model_inspector.render import to_html, to_markdown
from pipeline_components.components.model_inspector.saved_model import inspect_saved_model, serving_signatures
from pipeline_components.errors import ModelInspectionError


def resolve_saved_model_dir(path: Path) -> Path:
    """A SavedModel folder from what a person points at: the folder itself, a Trainer's or InfraValidator's model
    artifact (``.../Format-Serving``), or a model base path (``<store>/<model>``: the version served now)."""
    if (path / "saved_model.pb").is_file():
        return path
    if (path / "Format-Serving" / "saved_model.pb").is_file():
        return path / "Format-Serving"
    served = served_version_dir(path)
    if served is not None:
        return served
    raise ModelInspectionError(
        f"{path} holds no SavedModel: give a version folder (with saved_model.pb), a model artifact folder "
        "(with Format-Serving/) or a model base path <store>/<model> with numbered versions"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline_components.components.model_inspector")
    parser.add_argument("path", type=Path)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--compare-with", type=Path)
    parser.add_argument("--html", type=Path)
    args = parser.parse_args(argv)
    try:
        model_dir = resolve_saved_model_dir(args.path)
        report = inspect_saved_model(model_dir)
        comparison = None
        if args.compare_with:
            other = inspect_saved_model(resolve_saved_model_dir(args.compare_with))
            differences = compare_signatures(serving_signatures(other), serving_signatures(report))
            breaking = [d for d in differences if d.breaking]
            comparison = {
                "passed": not breaking,
                "summary": f"{len(breaking)} breaking change(s) against {other['path']}",
                "served_version": other["path"],
                "differences": [d.as_dict() for d in differences],
            }
            report["comparison"] = comparison
    except ModelInspectionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.html:
        args.html.write_text(to_html(report, comparison))
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else to_markdown(report, comparison), end="")
    if args.json:
        print()
    return 1 if comparison is not None and not comparison["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
