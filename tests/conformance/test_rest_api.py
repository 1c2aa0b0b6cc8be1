"""TF Serving's REST API (api_rest.md): status, metadata, predict (row and columnar), classify, regress, errors."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.conformance.fixtures import MODEL_NAME
from tests.conformance.harness import ServerProcess
from tests.conformance.samples import CLASS_NAMES, NUM_CLASSES, ROWS, b64, columns

M = f"/v1/models/{MODEL_NAME}"
# Every way api_rest.md lets a request name the version: latest, a version, a label.
VERSION_PATHS = [
    pytest.param(M, 2, id="latest"),
    pytest.param(f"{M}/versions/1", 1, id="version-1"),
    pytest.param(f"{M}/labels/stable", 1, id="label-stable"),
    pytest.param(f"{M}/labels/canary", 2, id="label-canary"),
]


def _assert_probabilities(predictions: Any, rows: int) -> None:
    assert len(predictions) == rows
    for row in predictions:
        assert len(row) == NUM_CLASSES
        assert math.isclose(sum(row), 1.0, rel_tol=1e-4)


def test_status_lists_every_version_newest_first(shared_server: ServerProcess) -> None:
    response = shared_server.get(M)
    assert response.status == 200
    body = response.json()
    assert [v["version"] for v in body["model_version_status"]] == ["2", "1"]
    for entry in body["model_version_status"]:
        assert entry["state"] == "AVAILABLE"
        assert entry["status"] == {"error_code": "OK", "error_message": ""}


@pytest.mark.parametrize(("path", "version"), VERSION_PATHS)
def test_status_of_one_version(shared_server: ServerProcess, path: str, version: int) -> None:
    response = shared_server.get(path)
    assert response.status == 200
    versions = [v["version"] for v in response.json()["model_version_status"]]
    if "/versions/" in path:
        assert versions == [str(version)]
    else:
        assert str(version) in versions


@pytest.mark.parametrize(("path", "version"), VERSION_PATHS)
def test_metadata_has_signature_defs_in_tf_serving_shape(shared_server: ServerProcess, path: str, version: int) -> None:
    response = shared_server.get(f"{path}/metadata")
    assert response.status == 200, response.body
    body = response.json()
    assert body["model_spec"]["name"] == MODEL_NAME
    assert body["model_spec"]["version"] == str(version)
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "serving_tf_example", "serving_classify", "serving_regress"} <= set(signatures)
    default = signatures["serving_default"]
    assert set(default["inputs"]) == set(ROWS[0])
    assert default["inputs"]["island"]["dtype"] == "DT_STRING"
    assert default["inputs"]["bill_length_mm"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
    assert default["outputs"]["probabilities"]["dtype"] == "DT_FLOAT"
    assert default["method_name"] == "tensorflow/serving/predict"
    assert signatures["serving_tf_example"]["inputs"]["examples"]["dtype"] == "DT_STRING"


@pytest.mark.parametrize(("path", "version"), VERSION_PATHS)
def test_predict_row_form(shared_server: ServerProcess, path: str, version: int) -> None:
    response = shared_server.post(f"{path}:predict", {"instances": ROWS})
    assert response.status == 200, response.body
    _assert_probabilities(response.json()["predictions"], len(ROWS))


def test_predict_columnar_form_matches_row_form(shared_server: ServerProcess) -> None:
    rows = shared_server.post(f"{M}:predict", {"instances": ROWS}).json()["predictions"]
    response = shared_server.post(f"{M}:predict", {"inputs": columns()})
    assert response.status == 200, response.body
    outputs = response.json()["outputs"]
    _assert_probabilities(outputs, len(ROWS))
    for a, b in zip(outputs, rows, strict=True):
        assert a == pytest.approx(b, rel=1e-5)


def test_predict_b64_strings_equal_plain_strings(shared_server: ServerProcess) -> None:
    plain = shared_server.post(f"{M}:predict", {"instances": ROWS[:1]}).json()["predictions"]
    encoded = dict(ROWS[0], island=b64(ROWS[0]["island"]), sex=b64(ROWS[0]["sex"]))
    response = shared_server.post(f"{M}:predict", {"instances": [encoded]})
    assert response.status == 200, response.body
    assert response.json()["predictions"][0] == pytest.approx(plain[0], rel=1e-6)


def test_predict_with_named_signature(shared_server: ServerProcess) -> None:
    response = shared_server.post(f"{M}:predict", {"signature_name": "serving_default", "instances": ROWS})
    assert response.status == 200, response.body


@pytest.mark.parametrize("verb", ["classify", "regress"])
@pytest.mark.parametrize(("path", "version"), VERSION_PATHS)
def test_classify_and_regress_over_tf_examples_agree_with_predict(
    shared_server: ServerProcess, path: str, version: int, verb: str
) -> None:
    response = shared_server.post(f"{path}:{verb}", {"signature_name": f"serving_{verb}", "examples": ROWS})
    assert response.status == 200, response.body
    results = response.json()["results"]
    assert len(results) == len(ROWS)
    predicted = shared_server.post(f"{path}:predict", {"instances": ROWS}).json()["predictions"]
    if verb == "classify":
        # Every class, named as the configuration names it (label.classes), with its probability.
        assert [[label for label, _ in row] for row in results] == [CLASS_NAMES] * len(ROWS)
        results, expected = [[score for _, score in row] for row in results], predicted
    else:
        # The pipeline's regression output is the probability of the most likely class.
        expected = [max(p) for p in predicted]
    for got, want in zip(results, expected, strict=True):
        assert got == pytest.approx(want, rel=1e-4)


def test_classify_with_context_merges_common_features(shared_server: ServerProcess) -> None:
    common = {"island": "Biscoe", "sex": "female"}
    examples = [{k: v for k, v in row.items() if k not in common} for row in ROWS]
    with_context = shared_server.post(
        f"{M}:classify", {"signature_name": "serving_classify", "context": common, "examples": examples}
    )
    assert with_context.status == 200, with_context.body
    merged = [dict(row, **common) for row in examples]
    without = shared_server.post(f"{M}:classify", {"signature_name": "serving_classify", "examples": merged})
    assert with_context.json() == without.json()


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        pytest.param("POST", "/v1/models/nosuchmodel:predict", {"instances": ROWS}, 404, id="unknown-model"),
        pytest.param("POST", f"{M}/versions/999:predict", {"instances": ROWS}, 404, id="unknown-version"),
        pytest.param("POST", f"{M}/labels/nosuchlabel:predict", {"instances": ROWS}, 400, id="unknown-label"),
        pytest.param("GET", "/v1/models/nosuchmodel", None, 404, id="status-unknown-model"),
        pytest.param("GET", f"{M}/versions/999", None, 404, id="status-unknown-version"),
        pytest.param("GET", "/v1/models/nosuchmodel/metadata", None, 404, id="metadata-unknown-model"),
        pytest.param("GET", f"{M}/versions/999/metadata", None, 404, id="metadata-unknown-version"),
        pytest.param("POST", f"{M}:predict", b"{not json", 400, id="bad-json"),
        pytest.param("POST", f"{M}:predict", b"", 400, id="empty-body"),
        pytest.param("POST", f"{M}:predict", [1, 2], 400, id="body-not-an-object"),
        pytest.param("POST", f"{M}:predict", {"rows": ROWS}, 400, id="no-instances-or-inputs"),
        pytest.param("POST", f"{M}:predict", {"instances": ROWS, "inputs": columns()}, 400, id="both-forms"),
        pytest.param("POST", f"{M}:predict", {"instances": []}, 400, id="empty-instances"),
        pytest.param("POST", f"{M}:predict", {"instances": [{"island": "Dream"}]}, 400, id="missing-inputs"),
        pytest.param("POST", f"{M}:predict", {"instances": [dict(ROWS[0], wings=2.0)]}, 400, id="extra-input"),
        pytest.param("POST", f"{M}:predict", {"instances": [dict(ROWS[0], island=7)]}, 400, id="wrong-type"),
        pytest.param(
            "POST",
            f"{M}:predict",
            {"inputs": dict(columns(), island=[["Dream"], ["Biscoe"], ["Dream"]])},
            400,
            id="wrong-shape",
        ),
        pytest.param(
            "POST",
            f"{M}:predict",
            {"inputs": dict(columns(), island=[["Dream"], "Biscoe", "Dream"])},
            400,
            id="ragged",
        ),
        pytest.param("POST", f"{M}:predict", {"instances": [dict(ROWS[0], island={"b64": "%%%"})]}, 400, id="bad-b64"),
        pytest.param(
            "POST",
            f"{M}:predict",
            {"signature_name": "nosuchsignature", "instances": ROWS},
            400,
            id="unknown-signature",
        ),
        pytest.param("POST", f"{M}:classify", {"examples": ROWS}, 400, id="classify-on-predict-signature"),
        pytest.param("POST", f"{M}:classify", {"signature_name": "serving_classify"}, 400, id="classify-no-examples"),
        pytest.param(
            "POST",
            f"{M}:regress",
            {"signature_name": "serving_regress", "examples": []},
            400,
            id="regress-empty-examples",
        ),
        pytest.param("POST", f"{M}:explain", {"instances": ROWS}, 400, id="unknown-verb"),
        pytest.param("GET", "/v1/models", None, 400, id="no-model-name"),
    ],
)
def test_errors_have_tf_serving_status_and_error_body(
    shared_server: ServerProcess, method: str, path: str, body: Any, status: int
) -> None:
    response = shared_server.get(path) if method == "GET" else shared_server.post(path, body)
    assert response.status == status, response.body
    error = response.json()
    assert list(error) == ["error"]
    assert isinstance(error["error"], str) and error["error"]


def test_unknown_model_message_names_it(shared_server: ServerProcess) -> None:
    response = shared_server.post("/v1/models/nosuchmodel:predict", {"instances": ROWS})
    assert response.json()["error"] == "Servable not found for request: Latest(nosuchmodel)"
    response = shared_server.get(f"{M}/versions/999")
    assert response.json()["error"] == f"Could not find version 999 of model {MODEL_NAME}"
