"""Read the node graph out of a compiled TFX IR file, as plain JSON (no TFX import).

The IR (``pipeline_pb2.Pipeline`` serialized with protobuf's JSON mapping) lists nodes in topological order;
each ``pipelineNode`` carries ``nodeInfo.id``, ``nodeInfo.type.name`` and ``upstreamNodes``. That is all an
Airflow DAG needs at parse time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline_components.errors import NotCompiledError


@dataclass(frozen=True)
class NodeSpec:
    id: str
    component_type: str
    upstream: tuple[str, ...]

    @property
    def short_type(self) -> str:
        """``tfx.components.trainer.component.Trainer`` -> ``Trainer``."""
        return self.component_type.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class PipelineGraph:
    name: str
    ir_path: Path
    nodes: tuple[NodeSpec, ...]
    config_path: str | None = None
    overrides: dict[str, object] = field(default_factory=dict)  # `runway compile --set`, recorded in the IR

    def node(self, node_id: str) -> NodeSpec:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)


def read_pipeline_graph(ir_path: Path) -> PipelineGraph:
    """Parse node ids, component types and upstream edges from a compiled IR JSON file.

    Raises:
        NotCompiledError: the file does not exist, or is not a compiled TFX pipeline.
    """
    if not ir_path.is_file():
        raise NotCompiledError(f"no compiled pipeline at {ir_path}; run `runway compile` first")
    try:
        document = json.loads(ir_path.read_text())
        name = document["pipelineInfo"]["id"]
        raw_nodes = document["nodes"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise NotCompiledError(f"{ir_path} is not a compiled TFX pipeline ({err}); recompile it") from None
    nodes = []
    for raw in raw_nodes:
        node = raw["pipelineNode"]
        nodes.append(
            NodeSpec(
                id=node["nodeInfo"]["id"],
                component_type=node["nodeInfo"].get("type", {}).get("name", ""),
                upstream=tuple(node.get("upstreamNodes", [])),
            )
        )
    ids = {node.id for node in nodes}
    for node in nodes:
        unknown = set(node.upstream) - ids
        if unknown:
            raise NotCompiledError(f"{ir_path}: node {node.id} depends on unknown nodes {sorted(unknown)}")
    origin = document.get("runway", {})
    return PipelineGraph(
        name=name,
        ir_path=ir_path,
        nodes=tuple(nodes),
        config_path=origin.get("config"),
        overrides=dict(origin.get("overrides") or {}),
    )
