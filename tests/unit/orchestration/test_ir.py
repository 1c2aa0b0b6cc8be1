from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline_components.errors import NotCompiledError
from pipeline_components.orchestration.ir import read_pipeline_graph


def write_ir(path: Path, nodes: list[tuple[str, str, list[str]]], name: str = "demo") -> Path:
    """A compiled-IR-shaped JSON file (protobuf JSON mapping of pipeline_pb2.Pipeline), nodes only."""
    document = {
        "runway": {"config": "/configs/demo.yaml", "overrides": {}},
        "pipelineInfo": {"id": name},
        "nodes": [
            {
                "pipelineNode": {
                    "nodeInfo": {"id": node_id, "type": {"name": f"tfx.components.{kind}"}},
                    **({"upstreamNodes": upstream} if upstream else {}),
                }
            }
            for node_id, kind, upstream in nodes
        ],
    }
    path.write_text(json.dumps(document))
    return path


DEMO = [
    ("CsvExampleGen", "CsvExampleGen", []),
    ("StatisticsGen", "StatisticsGen", ["CsvExampleGen"]),
    ("Trainer", "Trainer", ["CsvExampleGen"]),
    ("Pusher", "Pusher", ["StatisticsGen", "Trainer"]),
]


def test_reads_nodes_types_and_edges(tmp_path: Path) -> None:
    graph = read_pipeline_graph(write_ir(tmp_path / "demo.json", DEMO))
    assert graph.name == "demo"
    assert [n.id for n in graph.nodes] == ["CsvExampleGen", "StatisticsGen", "Trainer", "Pusher"]
    assert graph.node("Pusher").upstream == ("StatisticsGen", "Trainer")
    assert graph.node("Trainer").short_type == "Trainer"
    assert graph.config_path == "/configs/demo.yaml"


def test_missing_ir_says_how_to_compile(tmp_path: Path) -> None:
    with pytest.raises(NotCompiledError, match="runway compile"):
        read_pipeline_graph(tmp_path / "absent.json")


@pytest.mark.parametrize(
    "content",
    [pytest.param("{not json", id="garbage"), pytest.param('{"nodes": []}', id="no-pipeline-info")],
)
def test_garbage_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(NotCompiledError, match="not a compiled TFX pipeline"):
        read_pipeline_graph(path)


def test_dangling_edge_is_refused(tmp_path: Path) -> None:
    path = write_ir(tmp_path / "x.json", [("A", "A", ["Ghost"])])
    with pytest.raises(NotCompiledError, match="unknown nodes"):
        read_pipeline_graph(path)
