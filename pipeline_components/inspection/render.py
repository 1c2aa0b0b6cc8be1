"""An inspection report as a page a person reads: Markdown (terminal, docs) and HTML (the Airflow task's link)."""

from __future__ import annotations

import html
from typing import Any

from pipeline_components.inspection.contract import dtype_name


def _shape(shape: list[int] | None) -> str:
    return "unknown rank" if shape is None else "(" + ", ".join(str(d) for d in shape) + ")"


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
            rows.append([direction[:-1], name, dtype_name(tensor["dtype"]), _shape(tensor["shape"]), tensor["name"]])
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


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #1b2631; }
table { border-collapse: collapse; margin: 0.5em 0 1.2em; }
th, td { border: 1px solid #d5d8dc; padding: 3px 9px; text-align: left; font-size: 90%; }
th { background: #f4f6f7; } code { background: #f4f6f7; padding: 1px 4px; }
.ok { color: #1e8449; font-weight: bold; } .bad { color: #b03a2e; font-weight: bold; }
"""


def to_html(report: dict[str, Any], contract: dict[str, Any] | None = None, title: str | None = None) -> str:
    """The report as one self-contained HTML page."""
    title = title or f"SavedModel {report['path']}"
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
    ]
    if contract is not None:
        css = "ok" if contract.get("passed") else "bad"
        verdict = "passed" if contract.get("passed") else "failed"
        parts.append(f"<h2>Serving contract: <span class='{css}'>{verdict}</span></h2><ul>")
        parts += [f"<li>{html.escape(line)}</li>" for line in _contract_lines(contract)]
        parts.append("</ul>")
    parts.append("<h2>Overview</h2>" + _table(["", ""], [list(row) for row in _overview(report)]))
    for meta_graph in report["meta_graphs"]:
        parts.append(f"<h2>Tag-set <code>{html.escape(','.join(meta_graph['tags']))}</code></h2>")
        for name, signature in meta_graph["signatures"].items():
            parts.append(
                f"<h3>signature_def['{html.escape(name)}'] — method <code>"
                f"{html.escape(signature['method_name'] or '-')}</code></h3>"
            )
            parts.append(_table(["", "name", "dtype", "shape", "tensor"], _tensor_rows(signature)))
    parts.append("<h2>Ops</h2><p>" + ", ".join(f"<code>{html.escape(op)}</code>" for op in report["ops"]) + "</p>")
    files = report["assets"] + report["assets_extra"]
    if files:
        parts.append("<h2>Assets</h2>" + _table(["file", "bytes"], [[a["path"], a["bytes"]] for a in files]))
    parts.append("</body></html>\n")
    return "".join(parts)
