"""What a SavedModel holds, as a JSON-able report: everything ``saved_model_cli show --all`` prints and more.

``saved_model_cli`` shows the tag-sets, the signatures with their method names, and each input and output with
its dtype, shape and tensor name. An operator also needs the variables (count and bytes), the assets, the size on
disk, the set of ops the graph uses (a server built without one of them cannot load the model) and the TensorFlow
version that wrote it. ``inspect_saved_model`` reads all of it from the files, without running the model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

from pipeline_components.errors import ModelInspectionError

REPORT_VERSION = 1
INIT_OP_SIGNATURE = "__saved_model_init_op"  # TF2's initializer, listed by saved_model_cli, never served


def _tensor_info(info: Any) -> dict[str, Any]:
    from tensorflow.core.framework import types_pb2

    if info.tensor_shape.unknown_rank:
        shape: list[int] | None = None
    else:
        shape = [int(dim.size) for dim in info.tensor_shape.dim]
    encoding = info.WhichOneof("encoding")
    return {
        "dtype": types_pb2.DataType.Name(info.dtype),
        "shape": shape,
        "name": info.name if encoding == "name" else f"({encoding})",
    }


def _function_ops(meta_graph: Any) -> set[str]:
    ops = {node.op for node in meta_graph.graph_def.node}
    library = meta_graph.graph_def.library
    for function in library.function:
        ops.update(node.op for node in function.node_def)
    # Calls of functions defined in the library are not ops a server must have.
    return ops - {function.signature.name for function in library.function}


def _variables(model_dir: Path) -> dict[str, Any]:
    import tensorflow as tf

    index = model_dir / "variables" / "variables.index"
    files = sorted((model_dir / "variables").glob("variables.*")) if (model_dir / "variables").is_dir() else []
    result: dict[str, Any] = {
        "count": 0,
        "parameters": 0,
        "tensor_bytes": 0,
        "file_bytes": sum(f.stat().st_size for f in files),
        "files": [f.name for f in files],
    }
    if not index.is_file():
        return result
    try:
        reader = tf.train.load_checkpoint(str(model_dir / "variables" / "variables"))
    except (tf.errors.OpError, ValueError) as error:
        raise ModelInspectionError(f"{model_dir}: cannot read the variables index ({error})") from None
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    for name, shape in shapes.items():
        if name == "_CHECKPOINTABLE_OBJECT_GRAPH":
            continue
        elements = 1
        for dim in shape:
            elements *= int(dim)
        result["count"] += 1
        result["parameters"] += elements
        dtype = dtypes[name]
        result["tensor_bytes"] += elements * (dtype.size if dtype != tf.string else 0)
    return result


def _files(folder: Path, root: Path) -> list[dict[str, Any]]:
    if not folder.is_dir():
        return []
    return [
        {"path": str(p.relative_to(root)), "bytes": p.stat().st_size} for p in sorted(folder.rglob("*")) if p.is_file()
    ]


def inspect_saved_model(model_dir: str | Path) -> dict[str, Any]:
    """Inspect one SavedModel folder (the one holding ``saved_model.pb``).

    Args:
        model_dir: the SavedModel folder, e.g. ``<store>/<model>/<version>`` or a Trainer's ``Format-Serving``.

    Returns:
        The report: ``meta_graphs`` (one per tag-set, with ``signatures`` -> ``method_name``, ``inputs``,
        ``outputs``; each tensor with ``dtype`` as TF's enum name, ``shape`` with -1 for unknown dimensions or
        ``None`` for unknown rank, and ``name``), ``ops``, ``tensorflow_version``, ``variables``, ``assets``,
        ``size_bytes`` and a ``fingerprint`` of ``saved_model.pb``.

    Raises:
        ModelInspectionError: no SavedModel there, or its graph or variables index does not parse.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    model_dir = Path(model_dir)
    pb = model_dir / "saved_model.pb"
    if not pb.is_file():
        raise ModelInspectionError(
            f"{model_dir} is not a SavedModel folder (no saved_model.pb); give the folder of one version, "
            "e.g. <store>/<model>/<version>"
        )
    saved_model = saved_model_pb2.SavedModel()
    data = pb.read_bytes()
    try:
        saved_model.ParseFromString(data)
    except Exception as error:  # protobuf's DecodeError and friends
        raise ModelInspectionError(f"{pb} does not parse as a SavedModel: {error}") from None
    meta_graphs = []
    ops: set[str] = set()
    versions: set[str] = set()
    for meta_graph in saved_model.meta_graphs:
        info = meta_graph.meta_info_def
        versions.add(info.tensorflow_version)
        graph_ops = _function_ops(meta_graph)
        ops |= graph_ops
        signatures = {}
        for key in sorted(meta_graph.signature_def):
            signature = meta_graph.signature_def[key]
            signatures[key] = {
                "method_name": signature.method_name,
                "inputs": {name: _tensor_info(signature.inputs[name]) for name in sorted(signature.inputs)},
                "outputs": {name: _tensor_info(signature.outputs[name]) for name in sorted(signature.outputs)},
            }
        meta_graphs.append(
            {
                "tags": sorted(info.tags),
                "tensorflow_version": info.tensorflow_version,
                "tensorflow_git_version": info.tensorflow_git_version,
                "signatures": signatures,
                "op_count": len(graph_ops),
                "function_count": len(meta_graph.graph_def.library.function),
            }
        )
    size = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
    return {
        "report_version": REPORT_VERSION,
        "path": str(model_dir.resolve()),
        "inspected_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "saved_model_schema_version": int(saved_model.saved_model_schema_version),
        "tensorflow_version": ", ".join(sorted(versions)),
        "meta_graphs": meta_graphs,
        "ops": sorted(ops),
        "variables": _variables(model_dir),
        "assets": _files(model_dir / "assets", model_dir),
        "assets_extra": _files(model_dir / "assets.extra", model_dir),
        "size_bytes": size,
        "saved_model_pb_sha256": hashlib.sha256(data).hexdigest(),
    }


def serving_signatures(report: dict[str, Any], tags: tuple[str, ...] = ("serve",)) -> dict[str, Any]:
    """The signatures of the meta graph with ``tags`` (TF Serving loads ``serve``), without the init op."""
    for meta_graph in report["meta_graphs"]:
        if sorted(meta_graph["tags"]) == sorted(tags):
            return {k: v for k, v in meta_graph["signatures"].items() if k != INIT_OP_SIGNATURE}
    found = [m["tags"] for m in report["meta_graphs"]]
    raise ModelInspectionError(f"{report['path']} has no meta graph tagged {list(tags)}; tag-sets: {found}")
