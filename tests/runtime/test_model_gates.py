"""The model gates on a tiny real model: signatures, inspection vs saved_model_cli, the serving-contract gate,
warmup, infra validation with a real model server, and the Pusher refusing a model without the infra blessing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import tensorflow as tf
from tfx.components.pusher import executor as pusher_executor
from tfx.types import artifact_utils, standard_artifacts

from pipeline_components.components.artifacts import ModelInspection
from pipeline_components.components.gate import GATE_FILE
from pipeline_components.components.infra_validator.executor import Executor as InfraValidatorExecutor
from pipeline_components.components.infra_validator.requests import WARMUP_FILE, read_warmup
from pipeline_components.components.model_inspector import (
    check_declared,
    inspect_saved_model,
    served_version_dir,
    serving_signatures,
)
from pipeline_components.components.model_inspector.contract import dtype_name
from pipeline_components.components.model_inspector.executor import Executor as ModelInspectorExecutor
from pipeline_components.settings import CHECKOUT
from tests.runtime.tiny_model import TinyModel, build_tiny_model

pytestmark = pytest.mark.runtime
VARIABLES = Path("variables") / "variables.data-00000-of-00001"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def _artifact(kind: type, uri: Path, **properties: Any) -> Any:
    artifact = kind()
    artifact.uri = str(uri)
    for key, value in properties.items():
        artifact.set_int_custom_property(key, value)
    return artifact


def _examples(tiny: TinyModel) -> Any:
    examples = _artifact(standard_artifacts.Examples, tiny.examples)
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    return examples


def _gate(artifact: Any) -> dict[str, Any]:
    return dict(json.loads((Path(artifact.uri) / GATE_FILE).read_text()))


# --- export ----------------------------------------------------------------------------------------------------------


def test_the_export_has_the_named_signatures_with_the_declared_inputs_and_outputs(tiny: TinyModel) -> None:
    signatures = serving_signatures(inspect_saved_model(tiny.saved_model))
    assert set(signatures) == {"serving_default", "serving_tf_example", "serving_classify", "serving_regress"}
    raw = signatures["serving_default"]
    features = tiny.config.features
    assert set(raw["inputs"]) == set(features.all)  # raw features, no label
    assert {dtype_name(raw["inputs"][n]["dtype"]) for n in features.numeric} == {"float32"}
    assert {dtype_name(raw["inputs"][n]["dtype"]) for n in features.categorical} == {"string"}
    assert all(t["shape"] == [-1] for t in raw["inputs"].values())  # 1-D batches: JSON rows or columns
    assert raw["outputs"]["probabilities"]["shape"] == [-1, 3]
    assert list(signatures["serving_tf_example"]["inputs"]) == ["examples"]
    assert set(signatures["serving_classify"]["outputs"]) == {"classes", "scores"}
    assert list(signatures["serving_regress"]["outputs"]) == ["outputs"]
    assert check_declared(tiny.config.serving.contract.model_dump(), signatures) == []


# --- inspection vs saved_model_cli -------------------------------------------------------------------------------


def _parse_saved_model_cli(text: str) -> dict[str, Any]:
    """``saved_model_cli show --all`` as {tag-set: {signature: {method, inputs, outputs}}} (the SignatureDef part)."""
    parsed: dict[str, Any] = {}
    tags = signature = direction = tensor = None
    for line in text.splitlines():
        if m := re.match(r"MetaGraphDef with tag-set: '([^']*)' contains the following SignatureDefs:", line):
            tags = m.group(1)
            parsed[tags] = {}
        elif m := re.match(r"signature_def\['([^']+)'\]:", line):
            signature = m.group(1)
            parsed[tags][signature] = {"method": None, "inputs": {}, "outputs": {}}
        elif m := re.match(r"\s+(inputs|outputs)\['([^']+)'\] tensor_info:", line):
            direction, tensor = m.group(1), m.group(2)
            parsed[tags][signature][direction][tensor] = {}
        elif m := re.match(r"\s+(dtype|shape|name): (.*)$", line):
            parsed[tags][signature][direction][tensor][m.group(1)] = m.group(2).strip()
        elif m := re.match(r"\s+Method name is: ?(.*)$", line):
            parsed[tags][signature]["method"] = m.group(1).strip()
        elif line.startswith("Concrete Functions:"):
            break
    return parsed


def _cli_shape(shape: list[int] | None) -> str:
    if shape is None:
        return "unknown_rank"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def test_the_inspection_report_holds_what_saved_model_cli_shows(tiny: TinyModel) -> None:
    cli = CHECKOUT / ".venv-runtime" / "bin" / "saved_model_cli"
    shown = subprocess.run(
        [str(cli), "show", "--all", "--dir", str(tiny.saved_model)], capture_output=True, text=True, check=True
    ).stdout
    expected = _parse_saved_model_cli(shown)
    report = inspect_saved_model(tiny.saved_model)
    ours = {
        ",".join(meta_graph["tags"]): {
            name: {
                "method": signature["method_name"],
                **{
                    direction: {
                        tensor: {"dtype": info["dtype"], "shape": _cli_shape(info["shape"]), "name": info["name"]}
                        for tensor, info in signature[direction].items()
                    }
                    for direction in ("inputs", "outputs")
                },
            }
            for name, signature in meta_graph["signatures"].items()
        }
        for meta_graph in report["meta_graphs"]
    }
    assert ours == expected
    assert len(expected["serve"]) == 5  # the four serving signatures and TF2's __saved_model_init_op
    # What saved_model_cli does not show: an operator's figures, checked against the files themselves.
    assert report["tensorflow_version"] == tf.__version__
    assert report["size_bytes"] == sum(p.stat().st_size for p in tiny.saved_model.rglob("*") if p.is_file())
    assert report["variables"]["count"] > 0 and report["variables"]["file_bytes"] > 0
    assert {a["path"] for a in report["assets"]} == {"assets/island", "assets/sex"}  # the Transform vocabularies
    assert {"ParseExampleV2", "MatMul", "Softmax"} <= set(report["ops"])


# --- the serving-contract gate on real SavedModels -----------------------------------------------------------------


def _served_model_with_an_extra_input(path: Path, candidate: Path) -> None:
    """A SavedModel whose serving_default takes the candidate's inputs plus 'year' (so the candidate removed it)."""
    loaded = tf.saved_model.load(str(candidate))
    specs = dict(loaded.signatures["serving_default"].structured_input_signature[1])
    specs["year"] = tf.TensorSpec([None], tf.int64, name="year")

    class Served(tf.Module):
        @tf.function(input_signature=[specs])
        def serve(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
            return {"probabilities": tf.ones([tf.shape(features["year"])[0], 3]) / 3.0}

    module = Served()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve.get_concrete_function()})


def _run_inspector(tiny: TinyModel, tmp_path: Path, store: Path, allow: bool) -> Any:
    inspection = _artifact(ModelInspection, tmp_path / f"inspection-{allow}")
    ModelInspectorExecutor().Do(
        {"model": [_artifact(standard_artifacts.Model, tiny.saved_model.parent)]},
        {"inspection": [inspection]},
        {
            "contract": json.dumps(tiny.config.serving.contract.model_dump()),
            "serving_model_dir": str(store / "penguins_species"),
            "allow_breaking_change": int(allow),
        },
    )
    return inspection


def test_the_contract_gate_blocks_a_removed_input_unless_the_run_allows_it(tiny: TinyModel, tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = _run_inspector(tiny, tmp_path, store, allow=False)  # nothing served yet: only the declared contract
    assert _gate(first)["gate_passed"] is True and first.get_string_custom_property("served_version") == ""

    _served_model_with_an_extra_input(store / "penguins_species" / "7", tiny.saved_model)
    blocked = _run_inspector(tiny, tmp_path, store, allow=False)
    gate = _gate(blocked)
    assert gate["gate_passed"] is False
    assert gate["gate_failures"] == [
        "breaking change vs served version 7: serving_default: input 'year' (int64 (-1)) was removed"
    ]
    assert blocked.get_int_custom_property("contract_passed") == 0
    assert blocked.get_int_custom_property("breaking_changes") == 1
    out = Path(blocked.uri)
    report = json.loads((out / "inspection.json").read_text())
    assert set(report["meta_graphs"][0]["signatures"]) >= {"serving_default", "serving_classify"}
    assert "input 'year'" in (out / "inspection.md").read_text() and (out / "inspection.html").is_file()

    allowed = _run_inspector(tiny, tmp_path, store, allow=True)
    gate = _gate(allowed)
    assert gate["gate_passed"] is True and "allow_breaking_change=true" in gate["gate_summary"]
    assert allowed.get_int_custom_property("allow_breaking_change") == 1  # recorded in ML Metadata
    assert allowed.get_int_custom_property("breaking_changes") == 1


def test_the_served_version_is_the_one_labelled_stable(tiny: TinyModel, tmp_path: Path) -> None:
    base = tmp_path / "store" / "penguins_species"
    for version in (1, 2):
        shutil.copytree(tiny.saved_model, base / str(version))
    assert served_version_dir(base) == base / "2"
    (base.parent / "models.config").write_text(
        f'model_config_list {{ config {{ name: "penguins_species" base_path: "{base}" model_platform: "tensorflow" '
        'version_labels { key: "stable" value: 1 } } }\n'
    )
    assert served_version_dir(base) == base / "1"


# --- warmup and infra validation ------------------------------------------------------------------------------------


def _run_infra_validator(tiny: TinyModel, model_dir: Path, tmp_path: Path) -> tuple[Any, Any]:
    warmed = _artifact(standard_artifacts.Model, tmp_path / "warmed")
    blessing = _artifact(standard_artifacts.InfraBlessing, tmp_path / "blessing")
    InfraValidatorExecutor().Do(
        {"model": [_artifact(standard_artifacts.Model, model_dir)], "examples": [_examples(tiny)]},
        {"warmed_model": [warmed], "blessing": [blessing]},
        {"model_name": "penguins_species", "warmup_records": 12, "query_examples": 8, "timeout_s": 120},
    )
    return warmed, blessing


def _push(tmp_path: Path, model: Any, infra_blessing: Any) -> tuple[Any, Path]:
    store = tmp_path / "pushed_store" / "penguins_species"
    pushed = _artifact(standard_artifacts.PushedModel, tmp_path / "pushed")
    model_blessing = _artifact(standard_artifacts.ModelBlessing, tmp_path / "model_blessing", blessed=1)
    pusher_executor.Executor().Do(
        {"model": [model], "model_blessing": [model_blessing], "infra_blessing": [infra_blessing]},
        {"pushed_model": [pushed]},
        {"push_destination": json.dumps({"filesystem": {"base_directory": str(store)}}), "custom_config": "null"},
    )
    return pushed, store


def test_a_good_model_is_blessed_warmed_and_pushed_with_its_warmup(tiny: TinyModel, tmp_path: Path) -> None:
    warmed, blessing = _run_infra_validator(tiny, tiny.saved_model.parent, tmp_path)
    gate = _gate(blessing)
    assert gate["gate_passed"] is True, gate["gate_failures"]
    assert blessing.get_int_custom_property("blessed") == 1 and (Path(blessing.uri) / "INFRA_BLESSED").exists()
    verdict = json.loads((Path(blessing.uri) / "infra_validation.json").read_text())
    assert verdict["warmup"] == {"predict_log": 6, "classify_log": 6}
    assert verdict["warmup_replayed"] == 12  # the server read and replayed every record before serving
    assert verdict["rest_max_abs_diff"] < 1e-4 and verdict["grpc_max_abs_diff"] < 1e-4

    warmup = Path(warmed.uri) / "Format-Serving" / WARMUP_FILE
    records = read_warmup(warmup)
    assert [r.WhichOneof("log_type") for r in records[:2]] == ["predict_log", "classify_log"]
    predict = records[0].predict_log.request
    assert predict.model_spec.signature_name == "serving_default"
    assert set(predict.inputs) == set(tiny.config.features.all)  # raw features of a real eval example
    example = records[1].classify_log.request.input.example_list.examples[0]
    assert example.features.feature["island"].bytes_list.value[0] in (b"Biscoe", b"Dream", b"Torgersen")

    pushed, store = _push(tmp_path, warmed, blessing)
    assert pushed.get_int_custom_property("pushed") == 1
    (version,) = list(store.iterdir())
    assert (version / WARMUP_FILE).is_file() and (version / "saved_model.pb").is_file()


def test_a_truncated_model_fails_infra_validation_and_is_never_pushed(tiny: TinyModel, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt" / "Format-Serving"
    shutil.copytree(tiny.saved_model, corrupt)
    data = corrupt / VARIABLES
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    warmed, blessing = _run_infra_validator(tiny, corrupt.parent, tmp_path)
    gate = _gate(blessing)
    assert gate["gate_passed"] is False
    assert "could not load the model" in gate["gate_failures"][0]
    assert blessing.get_int_custom_property("blessed") == 0 and (Path(blessing.uri) / "INFRA_NOT_BLESSED").exists()
    pushed, store = _push(tmp_path, warmed, blessing)
    assert pushed.get_int_custom_property("pushed") == 0
    assert not store.exists() or not any(store.iterdir())


def test_the_inspect_command_prints_the_report_and_compares(tiny: TinyModel, tmp_path: Path) -> None:
    import sys

    def inspect(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pipeline_components.components.model_inspector", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=600)

    shown = inspect(str(tiny.saved_model.parent), "--json", "--html", str(tmp_path / "page.html"))
    assert shown.returncode == 0, shown.stderr[-2000:]
    report = json.loads(shown.stdout)
    assert report["path"] == str(tiny.saved_model.resolve())  # a model artifact folder resolves to Format-Serving
    assert "serving_default" in report["meta_graphs"][0]["signatures"]
    assert "signature_def['serving_classify']" in (tmp_path / "page.html").read_text()

    served = tmp_path / "served"
    _served_model_with_an_extra_input(served, tiny.saved_model)
    compared = inspect(str(tiny.saved_model), "--compare-with", str(served))
    assert compared.returncode == 1
    assert "BREAKING: serving_default: input 'year' (int64 (-1)) was removed" in compared.stdout
    missing = inspect(str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "holds no SavedModel" in missing.stderr
