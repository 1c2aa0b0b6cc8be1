"""TFLite publication, encoder and gate on their own (fast; the real variants are in test_tflite_variants.py)."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline_components.components.tflite_variants import encoder, measure
from pipeline_components.components.tflite_variants.executor import ENCODER_FILE, ENCODING_FILE, RESULT_FILE
from pipeline_components.components.tflite_variants.publish import publish
from pipeline_components.errors import DataError

pytestmark = pytest.mark.runtime


def _variant(name: str, accepted: bool, content: bytes) -> dict[str, Any]:
    return {
        "name": name,
        "description": name,
        "accepted": accepted,
        "reason": "within budget" if accepted else "drop +0.0300 exceeds budget 0.0100",
        "budget": 0.01,
        "delta": -0.001 if accepted else -0.03,
        "file": f"variants/{name}.tflite",
        "contract": {"inputs": [{"name": "x_xf", "dtype": "float32", "shape": [-1]}], "outputs": []},
        "measured": {
            "sha256": hashlib.sha256(content).hexdigest(),  # not a flatbuffer: the publication only copies it
            "size_bytes": len(content),
            "gzip_bytes": len(content),
            "weight_bytes": len(content),
            "metrics": {"auc": 0.74, "accuracy": 0.8},
            "agreement": 0.99,
            "latency_p50_ms": 0.03,
            "latency_p95_ms": 0.04,
        },
    }


def _variants_dir(root: Path, run_id: str, accepted: dict[str, bool]) -> Path:
    (root / "variants").mkdir(parents=True)
    variants = []
    for name, ok in accepted.items():
        content = f"{run_id}:{name}".encode()
        (root / "variants" / f"{name}.tflite").write_bytes(content)
        variants.append(_variant(name, ok, content))
    result = {"run_id": run_id, "metric": "auc", "reference": {"metrics": {"auc": 0.741}, "rows": 10}}
    (root / RESULT_FILE).write_text(json.dumps({**result, "variants": variants}))
    (root / ENCODING_FILE).write_text("{}")
    (root / ENCODER_FILE).write_text("# encoder")
    return root


def test_only_accepted_variants_are_published_with_matching_metadata(tmp_path: Path) -> None:
    version = tmp_path / "store" / "flights_delay" / "7"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"served")
    source = _variants_dir(tmp_path / "a", "run-a", {"int8": True, "pruned": False})
    index = publish(source, version, model="flights_delay", version="7")
    assert index["variants"] == ["int8"] and list(index["rejected"]) == ["pruned"]
    folder = version / "tflite"
    assert sorted(p.name for p in folder.iterdir()) == [
        "encoder.py",
        "encoding.json",
        "index.json",
        "int8.json",
        "int8.tflite",
    ]
    metadata = json.loads((folder / "int8.json").read_text())
    assert metadata["sha256"] == hashlib.sha256((folder / "int8.tflite").read_bytes()).hexdigest()
    assert metadata["source_run_id"] == "run-a" and metadata["version"] == "7"
    assert (version / "saved_model.pb").read_bytes() == b"served"  # nothing but tflite/ is touched
    assert [p.name for p in version.iterdir() if p.name.startswith(".")] == []


def test_republishing_swaps_the_whole_folder(tmp_path: Path) -> None:
    version = tmp_path / "7"
    version.mkdir()
    publish(_variants_dir(tmp_path / "a", "run-a", {"int8": True, "float16": True}), version, model="m", version="7")
    publish(_variants_dir(tmp_path / "b", "run-b", {"int8": True, "float16": False}), version, model="m", version="7")
    folder = version / "tflite"
    assert (folder / "int8.tflite").read_bytes() == b"run-b:int8"
    assert not (folder / "float16.tflite").exists()  # no file of the earlier publication survives
    assert sorted(p.name for p in version.iterdir()) == ["tflite"]


def test_a_republication_never_leaves_the_version_without_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = tmp_path / "7"
    version.mkdir()
    publish(_variants_dir(tmp_path / "a", "run-a", {"int8": True}), version, model="m", version="7")
    gaps: list[tuple[str, str]] = []
    rename = os.rename

    def watched_rename(source: Any, target: Any) -> None:  # a reader looking between two steps of the swap
        rename(source, target)
        if not (version / "tflite" / "index.json").is_file():
            gaps.append((str(source), str(target)))

    monkeypatch.setattr(os, "rename", watched_rename)
    publish(_variants_dir(tmp_path / "b", "run-b", {"int8": True}), version, model="m", version="7")
    assert gaps == [], "a consumer could find no tflite/ folder during the swap"
    assert json.loads((version / "tflite" / "index.json").read_text())["source_run_id"] == "run-b"


def test_a_missing_version_folder_is_a_typed_error(tmp_path: Path) -> None:
    source = _variants_dir(tmp_path / "a", "run-a", {"int8": True})
    with pytest.raises(DataError, match="does not exist"):
        publish(source, tmp_path / "nowhere", model="m", version="1")


def test_a_failed_copy_leaves_no_partial_folder(tmp_path: Path) -> None:
    version = tmp_path / "7"
    version.mkdir()
    source = _variants_dir(tmp_path / "a", "run-a", {"int8": True})
    os.remove(source / "variants" / "int8.tflite")
    with pytest.raises(FileNotFoundError):
        publish(source, version, model="m", version="7")
    assert list(version.iterdir()) == []


def test_encoder_z_scores_vocabulary_and_out_of_vocabulary() -> None:
    spec = {
        "version": encoder.SPEC_VERSION,
        "numeric": [{"name": "distance", "input": "distance_xf", "mean": 1000.0, "std": 500.0}],
        "categorical": [
            {"name": "carrier", "input": "carrier_xf", "dtype": "int64", "vocabulary": ["UA", "B6"]},
            {"name": "year", "input": "year_xf", "dtype": "int64", "vocabulary": ["2013", "2012"]},
        ],
    }
    out = encoder.encode(spec, {"distance": [1500, 1000], "carrier": ["B6", "ZZ"], "year": [2012.0, b"2013"]})
    np.testing.assert_allclose(out["distance_xf"], [1.0, 0.0])
    assert out["distance_xf"].dtype == np.float32
    assert out["carrier_xf"].tolist() == [1, 2]  # unseen: the one out-of-vocabulary index
    assert out["year_xf"].tolist() == [1, 0]  # an integer read back as a float is spelled as TF spells it


def test_gate_budget_and_undefined_metric() -> None:
    reference = {"auc": 0.75}
    assert measure.gate({"metrics": {"auc": 0.745}}, reference, "auc", 0.005)[0]
    ok, reason = measure.gate({"metrics": {"auc": 0.74}}, reference, "auc", 0.005)
    assert not ok and "exceeds budget 0.0050" in reason
    ok, reason = measure.gate({"metrics": {"auc": math.nan}}, reference, "auc", 0.01)
    assert not ok and "could not be computed" in reason


@pytest.mark.parametrize(
    ("variants", "present"), [pytest.param([], False, id="empty-list"), pytest.param(["int8"], True, id="int8")]
)
def test_the_tflite_nodes_exist_only_when_variants_are_configured(
    tmp_path: Path, variants: list[str], present: bool
) -> None:
    from tfx.orchestration.metadata import sqlite_metadata_connection_config

    from pipeline_components.config import load_pipeline_config
    from pipeline_components.pipeline.factory import create_pipeline
    from tests.conftest import CONFIGS

    config = load_pipeline_config(CONFIGS / "penguins.yaml").with_overrides({"tflite.variants": variants})
    pipeline = create_pipeline(
        config=config,
        data_root=tmp_path / "data",
        pipeline_root=tmp_path / "root",
        metadata_connection_config=sqlite_metadata_connection_config(str(tmp_path / "m.sqlite")),
        serving_model_dir=tmp_path / "models" / "penguins_species",
    )
    ids = {component.id for component in pipeline.components}
    assert ({"TFLiteVariants", "TFLitePublisher"} <= ids) is present
    assert not ({"TFLiteVariants", "TFLitePublisher"} & ids) or present
