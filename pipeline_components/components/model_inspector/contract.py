"""The serving contract: what client applications rely on in a model's signatures, and what breaks them.

Two checks, both on inspection reports (``saved_model.inspect_saved_model``), so they run without TensorFlow:

- ``check_declared``: the candidate against the contract declared in the pipeline configuration
  (``serving.contract``): each declared signature exists, has each required input with its dtype, and each
  declared output.
- ``compare_signatures``: the candidate against the version currently served. A signature that disappears, an
  input removed or renamed, an input whose dtype or shape changes, a new input (TF Serving has no optional inputs:
  every caller would now have to send it), an output removed or changed in dtype: each is a breaking change. An
  added signature or output is compatible.

Every difference is one readable line: what the served model has and what the candidate has.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The dtype names of the configuration -> TensorFlow's DataType enum names (what SignatureDefs record).
DTYPES = {
    "string": "DT_STRING",
    "int64": "DT_INT64",
    "int32": "DT_INT32",
    "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE",
    "bool": "DT_BOOL",
}
_DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


def dtype_name(enum_name: str) -> str:
    """``DT_FLOAT`` -> ``float32`` (the configuration's spelling); unknown names are returned as they are."""
    return _DTYPE_NAMES.get(enum_name, enum_name)


def shape_text(shape: list[int] | None) -> str:
    """``[-1, 3]`` -> ``(-1, 3)``; ``None`` (unknown rank) -> ``unknown rank``."""
    return "unknown rank" if shape is None else "(" + ", ".join(str(d) for d in shape) + ")"


def _tensor_text(spec: dict[str, Any]) -> str:
    return f"({dtype_name(spec['dtype'])} {shape_text(spec['shape'])})"


@dataclass(frozen=True)
class Difference:
    """One difference between two signature sets."""

    signature: str
    kind: str  # removed_signature, removed_input, renamed_input, added_input, input_dtype, input_shape, ...
    message: str
    breaking: bool

    def as_dict(self) -> dict[str, Any]:
        return {"signature": self.signature, "kind": self.kind, "message": self.message, "breaking": self.breaking}


def compare_signatures(served: dict[str, Any], candidate: dict[str, Any]) -> list[Difference]:
    """Differences between the served model's signatures and the candidate's (``serving_signatures`` of each).

    Returns:
        Every difference, breaking ones and compatible ones, in a stable order.
    """
    found: list[Difference] = []
    for name in sorted(served):
        if name not in candidate:
            found.append(
                Difference(name, "removed_signature", f"signature '{name}' was removed (served: present)", True)
            )
        else:
            found += _signature_differences(name, served[name], candidate[name])
    for name in sorted(set(candidate) - set(served)):
        found.append(Difference(name, "added_signature", f"new signature '{name}' (compatible)", False))
    return found


def _signature_differences(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[Difference]:
    """The differences of one signature that both models have."""
    found: list[Difference] = []

    def differ(kind: str, message: str, breaking: bool = True) -> None:
        found.append(Difference(name, kind, f"{name}: {message}", breaking))

    if old["method_name"] != new["method_name"]:
        differ("method_name", f"method name changed from '{old['method_name']}' to '{new['method_name']}'")
    removed = sorted(set(old["inputs"]) - set(new["inputs"]))
    added = sorted(set(new["inputs"]) - set(old["inputs"]))
    # A removed input and an added one of the same dtype and shape is a rename, reported as such.
    for old_input in list(removed):
        kind = (old["inputs"][old_input]["dtype"], old["inputs"][old_input]["shape"])
        match = next((a for a in added if (new["inputs"][a]["dtype"], new["inputs"][a]["shape"]) == kind), None)
        if match is not None:
            removed.remove(old_input)
            added.remove(match)
            differ("renamed_input", f"input '{old_input}' was renamed to '{match}' (clients still send '{old_input}')")
    for input_name in removed:
        differ("removed_input", f"input '{input_name}' {_tensor_text(old['inputs'][input_name])} was removed")
    for input_name in added:
        spec_text = _tensor_text(new["inputs"][input_name])
        differ("added_input", f"new input '{input_name}' {spec_text}; every caller would have to send it")
    for input_name in sorted(set(old["inputs"]) & set(new["inputs"])):
        a, b = old["inputs"][input_name], new["inputs"][input_name]
        if a["dtype"] != b["dtype"]:
            change = f"from {dtype_name(a['dtype'])} to {dtype_name(b['dtype'])}"
            differ("input_dtype", f"input '{input_name}' dtype changed {change}")
        elif a["shape"] != b["shape"]:
            change = f"from {shape_text(a['shape'])} to {shape_text(b['shape'])}"
            differ("input_shape", f"input '{input_name}' shape changed {change}")
    for output in sorted(set(old["outputs"]) - set(new["outputs"])):
        differ("removed_output", f"output '{output}' was removed")
    for output in sorted(set(new["outputs"]) - set(old["outputs"])):
        differ("added_output", f"new output '{output}' (compatible)", breaking=False)
    for output in sorted(set(old["outputs"]) & set(new["outputs"])):
        a, b = old["outputs"][output], new["outputs"][output]
        if a["dtype"] != b["dtype"]:
            change = f"from {dtype_name(a['dtype'])} to {dtype_name(b['dtype'])}"
            differ("output_dtype", f"output '{output}' dtype changed {change}")
    return found


def check_declared(contract: dict[str, Any], candidate: dict[str, Any]) -> list[str]:
    """The candidate's signatures against the declared contract; one line per violation.

    Args:
        contract: ``{"signatures": {name: {"inputs": {input: dtype}, "outputs": [name, ...]}}}`` (the
            configuration's ``serving.contract``, dtypes spelled ``string``, ``int64``, ``float32`` ...).
        candidate: the candidate's ``serving_signatures``.
    """
    failures: list[str] = []
    for name, declared in sorted(contract.get("signatures", {}).items()):
        signature = candidate.get(name)
        if signature is None:
            has = sorted(candidate)
            failures.append(f"signature '{name}' is declared in serving.contract but missing (has: {has})")
            continue
        for input_name, dtype in sorted(declared.get("inputs", {}).items()):
            actual = signature["inputs"].get(input_name)
            if actual is None:
                failures.append(
                    f"{name}: required input '{input_name}' ({dtype}) is missing "
                    f"(inputs: {sorted(signature['inputs'])})"
                )
            elif actual["dtype"] != DTYPES.get(dtype, dtype):
                failures.append(
                    f"{name}: input '{input_name}' is {dtype_name(actual['dtype'])}, the contract says {dtype}"
                )
        for output in declared.get("outputs", []):
            if output not in signature["outputs"]:
                failures.append(
                    f"{name}: declared output '{output}' is missing (outputs: {sorted(signature['outputs'])})"
                )
    return failures


def served_version_dir(model_base: str | Path) -> Path | None:
    """The version currently served from a model base path (``<store>/<model>``), or None if none is.

    If the fleet's model config file (``<store>/models.config``, a TF Serving ``ModelServerConfig`` text proto, see
    ``pipeline_components.fleet``) labels a version of this model ``stable`` and that version exists, it is the
    one; otherwise the newest numbered version with a ``saved_model.pb`` (what TF Serving's default "latest"
    policy serves).
    """
    from pipeline_components.fleet import STABLE_LABEL, model_config_path

    base = Path(model_base)
    if not base.is_dir():
        return None
    stable = _labelled_version(model_config_path(base.parent), base, STABLE_LABEL)
    if stable is not None and (base / str(stable) / "saved_model.pb").is_file():
        return base / str(stable)
    versions = [p for p in base.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()]
    return max(versions, key=lambda p: int(p.name)) if versions else None


def _labelled_version(config_file: Path, base: Path, label: str) -> int | None:
    if not config_file.is_file():
        return None
    try:
        from google.protobuf import text_format
        from tensorflow_serving.config import model_server_config_pb2

        config = text_format.Parse(config_file.read_text(), model_server_config_pb2.ModelServerConfig())
    except Exception:  # an unreadable label file must not hide the newest version: fall back to it
        return None
    for model in config.model_config_list.config:
        if (model.name == base.name or Path(model.base_path).name == base.name) and label in model.version_labels:
            return int(model.version_labels[label])
    return None
