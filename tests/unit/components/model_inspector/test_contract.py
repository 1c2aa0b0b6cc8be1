"""The serving-contract comparison on inspection-report dicts: each breaking kind is caught, compatible changes pass."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.components.model_inspector import check_declared, compare_signatures, served_version_dir


def _tensor(dtype: str, shape: list[int] | None = None) -> dict[str, Any]:
    return {"dtype": dtype, "shape": [-1] if shape is None else shape, "name": "x:0"}


SERVED: dict[str, Any] = {
    "serving_default": {
        "method_name": "tensorflow/serving/predict",
        "inputs": {
            "carrier": _tensor("DT_STRING"),
            "distance": _tensor("DT_FLOAT"),
            "day": _tensor("DT_INT64"),
        },
        "outputs": {"probabilities": _tensor("DT_FLOAT", [-1, 1])},
    },
    "serving_classify": {
        "method_name": "tensorflow/serving/predict",
        "inputs": {"inputs": _tensor("DT_STRING")},
        "outputs": {"classes": _tensor("DT_STRING", [-1, 2]), "scores": _tensor("DT_FLOAT", [-1, 2])},
    },
}


def _changed(change: str) -> dict[str, Any]:
    candidate = copy.deepcopy(SERVED)
    default = candidate["serving_default"]
    if change == "removed_input":
        del default["inputs"]["day"]
    elif change == "renamed_input":
        default["inputs"]["airline"] = default["inputs"].pop("carrier")
    elif change == "input_dtype":
        default["inputs"]["day"] = _tensor("DT_FLOAT")
    elif change == "removed_output":
        del candidate["serving_classify"]["outputs"]["scores"]
    elif change == "removed_signature":
        del candidate["serving_classify"]
    elif change == "added_input":
        default["inputs"]["tailnum"] = _tensor("DT_STRING")
    elif change == "input_shape":
        default["inputs"]["distance"] = _tensor("DT_FLOAT", [-1, 1])
    elif change == "output_dtype":
        default["outputs"]["probabilities"] = _tensor("DT_DOUBLE", [-1, 1])
    return candidate


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param("removed_input", "serving_default: input 'day' (int64 (-1)) was removed", id="removed-input"),
        pytest.param("renamed_input", "serving_default: input 'carrier' was renamed to 'airline'", id="renamed-input"),
        pytest.param(
            "input_dtype", "serving_default: input 'day' dtype changed from int64 to float32", id="dtype-change"
        ),
        pytest.param("removed_output", "serving_classify: output 'scores' was removed", id="removed-output"),
        pytest.param("removed_signature", "signature 'serving_classify' was removed", id="removed-signature"),
        pytest.param("added_input", "serving_default: new input 'tailnum'", id="added-required-input"),
        pytest.param("input_shape", "input 'distance' shape changed from (-1) to (-1, 1)", id="shape-change"),
        pytest.param("output_dtype", "output 'probabilities' dtype changed from float32 to float64", id="out-dtype"),
    ],
)
def test_each_breaking_change_is_reported_once_with_what_changed(change: str, message: str) -> None:
    differences = compare_signatures(SERVED, _changed(change))
    breaking = [d for d in differences if d.breaking]
    assert [d.kind for d in breaking] == [change]
    assert message in breaking[0].message


def test_an_added_output_and_an_added_signature_are_compatible() -> None:
    candidate = copy.deepcopy(SERVED)
    candidate["serving_default"]["outputs"]["logits"] = _tensor("DT_FLOAT", [-1, 1])
    candidate["serving_regress"] = {"method_name": "", "inputs": {}, "outputs": {}}
    differences = compare_signatures(SERVED, candidate)
    assert {d.kind for d in differences} == {"added_output", "added_signature"}
    assert not any(d.breaking for d in differences)


def test_an_identical_candidate_has_no_differences() -> None:
    assert compare_signatures(SERVED, copy.deepcopy(SERVED)) == []


def test_several_changes_are_each_listed() -> None:
    candidate = _changed("removed_input")
    del candidate["serving_classify"]["outputs"]["scores"]
    kinds = sorted(d.kind for d in compare_signatures(SERVED, candidate))
    assert kinds == ["removed_input", "removed_output"]


def test_the_declared_contract() -> None:
    contract = {
        "signatures": {
            "serving_default": {"inputs": {"carrier": "string", "day": "int64"}, "outputs": ["probabilities"]},
            "serving_classify": {"inputs": {"inputs": "string"}, "outputs": ["classes", "scores"]},
        }
    }
    assert check_declared(contract, SERVED) == []
    failures = check_declared(contract, _changed("input_dtype"))
    assert failures == ["serving_default: input 'day' is float32, the contract says int64"]
    failures = check_declared(contract, _changed("removed_signature"))
    assert len(failures) == 1 and "signature 'serving_classify' is declared" in failures[0]
    failures = check_declared(contract, _changed("removed_output"))
    assert failures == ["serving_classify: declared output 'scores' is missing (outputs: ['classes'])"]


def _version(base: Path, number: int) -> None:
    (base / str(number)).mkdir(parents=True)
    (base / str(number) / "saved_model.pb").write_bytes(b"")


def test_the_served_version_is_the_newest_with_a_saved_model(tmp_path: Path) -> None:
    base = tmp_path / "store" / "flights_delay"
    assert served_version_dir(base) is None
    _version(base, 100)
    _version(base, 300)
    (base / "400").mkdir()  # an unfinished push: no saved_model.pb
    (base / ".staging-500").mkdir()
    assert served_version_dir(base) == base / "300"
