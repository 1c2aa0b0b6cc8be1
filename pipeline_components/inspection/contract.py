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


def _shape(shape: list[int] | None) -> str:
    return "unknown rank" if shape is None else "(" + ", ".join(str(d) for d in shape) + ")"


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
        old = served[name]
        if name not in candidate:
            found.append(
                Difference(name, "removed_signature", f"signature '{name}' was removed (served: present)", True)
            )
            continue
        new = candidate[name]
        if old["method_name"] != new["method_name"]:
            found.append(
                Difference(
                    name,
                    "method_name",
                    f"{name}: method name changed from '{old['method_name']}' to '{new['method_name']}'",
                    True,
                )
            )
        removed = sorted(set(old["inputs"]) - set(new["inputs"]))
        added = sorted(set(new["inputs"]) - set(old["inputs"]))
        # A removed input and an added one of the same dtype and shape is a rename, reported as such.
        renamed: list[tuple[str, str]] = []
        for old_input in list(removed):
            match = next(
                (
                    a
                    for a in added
                    if new["inputs"][a]["dtype"] == old["inputs"][old_input]["dtype"]
                    and new["inputs"][a]["shape"] == old["inputs"][old_input]["shape"]
                ),
                None,
            )
            if match is not None:
                renamed.append((old_input, match))
                removed.remove(old_input)
                added.remove(match)
        for old_input, new_input in renamed:
            found.append(
                Difference(
                    name,
                    "renamed_input",
                    f"{name}: input '{old_input}' was renamed to '{new_input}' (clients still send '{old_input}')",
                    True,
                )
            )
        for input_name in removed:
            spec = old["inputs"][input_name]
            found.append(
                Difference(
                    name,
                    "removed_input",
                    f"{name}: input '{input_name}' ({dtype_name(spec['dtype'])} {_shape(spec['shape'])}) was removed",
                    True,
                )
            )
        for input_name in added:
            spec = new["inputs"][input_name]
            found.append(
                Difference(
                    name,
                    "added_input",
                    f"{name}: new input '{input_name}' ({dtype_name(spec['dtype'])} {_shape(spec['shape'])}); "
                    "every caller would have to send it",
                    True,
                )
            )
        for input_name in sorted(set(old["inputs"]) & set(new["inputs"])):
            a, b = old["inputs"][input_name], new["inputs"][input_name]
            if a["dtype"] != b["dtype"]:
                found.append(
                    Difference(
                        name,
                        "input_dtype",
                        f"{name}: input '{input_name}' dtype changed from {dtype_name(a['dtype'])} "
                        f"to {dtype_name(b['dtype'])}",
                        True,
                    )
                )
            elif a["shape"] != b["shape"]:
                found.append(
                    Difference(
                        name,
                        "input_shape",
                        f"{name}: input '{input_name}' shape changed from {_shape(a['shape'])} to {_shape(b['shape'])}",
                        True,
                    )
                )
        for output in sorted(set(old["outputs"]) - set(new["outputs"])):
            found.append(Difference(name, "removed_output", f"{name}: output '{output}' was removed", True))
        for output in sorted(set(new["outputs"]) - set(old["outputs"])):
            found.append(Difference(name, "added_output", f"{name}: new output '{output}' (compatible)", False))
        for output in sorted(set(old["outputs"]) & set(new["outputs"])):
            a, b = old["outputs"][output], new["outputs"][output]
            if a["dtype"] != b["dtype"]:
                found.append(
                    Difference(
                        name,
                        "output_dtype",
                        f"{name}: output '{output}' dtype changed from {dtype_name(a['dtype'])} "
                        f"to {dtype_name(b['dtype'])}",
                        True,
                    )
                )
    for name in sorted(set(candidate) - set(served)):
        found.append(Difference(name, "added_signature", f"new signature '{name}' (compatible)", False))
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
