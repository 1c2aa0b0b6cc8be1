"""An inspection report as a page a person reads: Markdown (terminal, docs) and HTML (the Airflow task's link)."""

from __future__ import annotations

from typing import Any

from pipeline_components.components.model_inspector.contract import dtype_name, shape_text
from pipeline_components.reports.render import Verdict, render


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


def _overview(report: dict[str, Any]) -> list[tuple[str, str]]:
    variables = report["variables"]
    return [
        ("path", report["path"]),
        ("written by TensorFlow", report["tensorflow_version"]),
        ("tag-sets", "; ".join(",".join(m["tags"]) for m in report["meta_graphs"])),
        ("size on disk", _bytes(report["size_bytes"])),
        ("variables", f"{variables['count']} ({variables['parameters']:,} values, {_bytes(variables['file_bytes'])})"),
        ("assets", f"{len(report['assets'])} files"),
        ("assets.extra", ", ".join(a["path"] for a in report["assets_extra"]) or "none"),
        ("ops", f"{len(report['ops'])} distinct"),
        ("saved_model.pb sha256", report["saved_model_pb_sha256"][:16] + "…"),
    ]


def _tensor_rows(signature: dict[str, Any]) -> list[list[str]]:
    rows = []
    for direction in ("inputs", "outputs"):
        for name, tensor in signature[direction].items():
            rows.append(
                [direction[:-1], name, dtype_name(tensor["dtype"]), shape_text(tensor["shape"]), tensor["name"]]
            )
    return rows


def to_markdown(report: dict[str, Any], contract: dict[str, Any] | None = None) -> str:
    """The report as Markdown: overview, each signature's tensors, contract verdict (if given), ops, assets."""
    lines = [f"# SavedModel {report['path']}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in _overview(report)]
    for meta_graph in report["meta_graphs"]:
        lines += ["", f"## Tag-set '{','.join(meta_graph['tags'])}'"]
        for name, signature in meta_graph["signatures"].items():
            lines += [
                "",
                f"### signature_def['{name}']  (method: `{signature['method_name'] or '-'}`)",
                "",
                "| | name | dtype | shape | tensor |",
                "|---|---|---|---|---|",
            ]
            lines += ["| " + " | ".join(row) + " |" for row in _tensor_rows(signature)]
    if contract is not None:
        lines += ["", "## Serving contract", ""]
        lines += [f"- {line}" for line in _contract_lines(contract)]
    lines += ["", "## Ops", "", ", ".join(f"`{op}`" for op in report["ops"])]
    if report["assets"]:
        lines += ["", "## Assets", "", "| file | bytes |", "|---|---|"]
        lines += [f"| {a['path']} | {a['bytes']} |" for a in report["assets"] + report["assets_extra"]]
    return "\n".join(lines) + "\n"


def _contract_lines(contract: dict[str, Any]) -> list[str]:
    lines = [f"verdict: {'passed' if contract.get('passed') else 'FAILED'} — {contract.get('summary', '')}"]
    served = contract.get("served_version")
    lines.append(f"compared with the served version: {served or 'none (first push)'}")
    lines += [f"declared contract: {f}" for f in contract.get("declared_failures", [])]
    for difference in contract.get("differences", []):
        tag = "BREAKING" if difference["breaking"] else "compatible"
        lines.append(f"{tag}: {difference['message']}")
    if contract.get("allow_breaking_change"):
        lines.append("run parameter allow_breaking_change=true: breaking changes are allowed in this run")
    return lines


def to_html(report: dict[str, Any], contract: dict[str, Any] | None = None, title: str | None = None) -> str:
    """The report as one self-contained HTML page (the shared page templates, ``pipeline_components/reports``).

    Args:
        report: ``inspect_saved_model``'s report.
        contract: the contract verdict (``contract_verdict`` or a comparison), if any: the page opens with it.
        title: the page's title (default: the SavedModel's path).

    Returns:
        The page.
    """
    if contract is None:
        verdict = Verdict(None, f"{report['variables']['count']} variables, {_bytes(report['size_bytes'])} on disk")
    else:
        failures = list(contract.get("failures") or [])
        verdict = Verdict(bool(contract.get("passed")), f"serving contract: {contract.get('summary', '')}", failures)
    meta_graphs = [
        {
            "tags": ",".join(meta_graph["tags"]),
            "signatures": [
                {"name": name, "method": signature["method_name"] or "-", "rows": _tensor_rows(signature)}
                for name, signature in meta_graph["signatures"].items()
            ],
        }
        for meta_graph in report["meta_graphs"]
    ]
    return render(
        "saved_model.html",
        title=title or f"SavedModel {report['path']}",
        verdict=verdict,
        contract_lines=_contract_lines(contract)[1:] if contract is not None else [],  # [0]: the verdict, on top
        overview=_overview(report),
        meta_graphs=meta_graphs,
        ops=report["ops"],
        files=[[a["path"], a["bytes"]] for a in report["assets"] + report["assets_extra"]],
    )
