"""`runway init`'s decisions on real datasets (scikit-learn's bundled ones), its files, and a label of class names
through Transform, Trainer and the Evaluator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sklearn import datasets

from pipeline_components.config import load_pipeline_config
from pipeline_components.data import csv_source
from pipeline_components.data.profile import choose_columns, choose_label
from pipeline_components.errors import ConfigError, DataError
from pipeline_components.settings import Settings

pytestmark = pytest.mark.runtime


def breast_cancer() -> pd.DataFrame:
    """The Wisconsin diagnostic breast cancer data as its users have it: the diagnosis by name."""
    bunch = datasets.load_breast_cancer(as_frame=True)
    frame = bunch.frame.drop(columns=["target"])
    frame.columns = [name.replace(" ", "_") for name in frame.columns]
    frame["diagnosis"] = [str(bunch.target_names[t]) for t in bunch.target]
    return frame


def test_a_label_of_two_names_is_binary_with_the_rarer_name_positive() -> None:
    label = choose_label(breast_cancer(), "diagnosis")
    assert (label.kind, label.values, label.classes) == ("binary", "name", ["benign", "malignant"])
    assert label.counts == {"benign": 357, "malignant": 212}
    assert "'malignant' is the positive class (the rarer value)" in label.reason
    assert choose_label(breast_cancer(), "diagnosis", positive="benign").classes == ["malignant", "benign"]


def test_yes_is_the_positive_class_by_its_name_and_0_1_stays_an_index() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "answer": ["yes", "yes", "yes", "no"]})
    assert choose_label(frame, "answer").classes == ["no", "yes"]
    frame["flag"] = [0, 1, 1, 0]
    label = choose_label(frame, "flag")
    assert (label.kind, label.values, label.classes) == ("binary", "index", [])


def test_class_names_and_class_indices_of_multiclass_labels() -> None:
    iris = datasets.load_iris(as_frame=True)
    frame = iris.frame.assign(species=[str(iris.target_names[t]) for t in iris.target]).drop(columns=["target"])
    names = choose_label(frame, "species")
    assert (names.kind, names.values, names.classes) == ("multiclass", "name", ["setosa", "versicolor", "virginica"])
    wine = choose_label(datasets.load_wine(as_frame=True).frame, "target")
    assert (wine.kind, wine.values, wine.classes) == ("multiclass", "index", ["0", "1", "2"])


def test_a_numeric_target_or_a_constant_is_not_a_classification_label() -> None:
    with pytest.raises(DataError, match="runway trains classifiers"):
        choose_label(datasets.load_diabetes(as_frame=True).frame, "target")
    with pytest.raises(DataError, match="nothing to learn"):
        choose_label(pd.DataFrame({"label": ["a", "a"]}), "label")
    with pytest.raises(DataError, match="no label column 'diagnosys'"):
        choose_label(breast_cancer(), "diagnosys")


def test_every_column_gets_a_role_and_its_reason() -> None:
    frame = breast_cancer().head(200).copy()
    frame["patient_id"] = [f"P{i:05d}" for i in range(len(frame))]  # names rows
    frame["clinic"] = ["north", "south"] * 100  # text: categorical
    frame["stage"] = [i % 4 for i in range(len(frame))]  # integer codes
    frame["site"] = "wisconsin"  # one value
    frame["biopsy_score"] = [None if i % 5 == 0 else 1.5 for i in range(len(frame))]  # missing in 20 %
    roles = {c.name: (c.role, c.reason) for c in choose_columns(frame, label="diagnosis", exclude=("mean_area",))}
    assert roles["mean_radius"][0] == "numeric" and roles["mean_radius"][1].startswith("float, ")
    assert roles["clinic"] == ("categorical", "text, 2 values (north, south)")
    assert roles["stage"][0] == "categorical" and roles["stage"][1].startswith("integer codes, 4 values")
    assert roles["patient_id"] == ("left_out", "text with 200 distinct values: names rows (an identifier)")
    assert roles["site"] == ("left_out", "one value in every row (wisconsin)")
    assert roles["biopsy_score"][1].startswith("missing in 20.0 % of rows")
    assert roles["mean_area"] == ("left_out", "left out on request (--exclude)")
    assert "diagnosis" not in roles
    with pytest.raises(DataError, match="--exclude names no column"):
        choose_columns(frame, label="diagnosis", exclude=("nope",))


def test_spans_from_a_column_or_from_folders(tmp_path: Path) -> None:
    frame = breast_cancer().head(30).assign(batch=[1, 2, 3] * 10)
    frame.to_csv(tmp_path / "all.csv", index=False)
    spans = csv_source.read_source(tmp_path / "all.csv", span_column="batch")
    assert sorted(spans) == [1, 2, 3] and all(len(rows) == 10 for rows in spans.values())
    assert "batch" not in spans[1].columns
    for span in (4, 17):
        (tmp_path / "exports" / f"week-{span}").mkdir(parents=True)
        frame.head(5).to_csv(tmp_path / "exports" / f"week-{span}" / "part.csv", index=False)
    assert sorted(csv_source.read_source(tmp_path / "exports", span_column=None)) == [4, 17]
    frame.assign(batch=["2013-01"] * 30).to_csv(tmp_path / "dates.csv", index=False)
    with pytest.raises(DataError, match=r"span column 'batch' must hold non-negative integers .* '2013-01'"):
        csv_source.read_source(tmp_path / "dates.csv", span_column="batch")


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, object]]:
    from pipeline_components.runtime.scaffold import scaffold

    root = tmp_path_factory.mktemp("init")
    frame = breast_cancer()
    frame["clinic"] = ["north", "south", "east"] * 189 + ["north", "south"]
    frame["year"] = [2019 + i % 3 for i in range(len(frame))]
    frame.to_csv(root / "biopsies.csv", index=False)
    settings = Settings.from_env({"RUNWAY_HOME": str(root / "home"), "RUNWAY_CONFIG_DIR": str(root / "configs")})
    result = scaffold(settings, name="biopsies", source=root / "biopsies.csv", label="diagnosis", span_column="year")
    return settings, result


def test_init_writes_a_configuration_that_loads_with_its_schema_suite_and_contract(
    scaffolded: tuple[Settings, dict[str, object]],
) -> None:
    settings, result = scaffolded
    config = load_pipeline_config(settings.config_dir / "biopsies.yaml")
    assert (config.data.preparer, config.data.span_column, config.data.window_spans) == ("csv", "year", 3)
    assert (config.label.values, config.label.classes) == ("name", ["benign", "malignant"])
    assert config.features.categorical == ["clinic"] and len(config.features.numeric) == 30
    assert config.serving.contract.signatures["serving_default"].inputs["clinic"] == "string"
    assert config.serving.contract.signatures["serving_default"].inputs["mean_radius"] == "float32"
    suite = json.loads(config.expectations_path.read_text())
    assert set(suite["expectations"][0]["kwargs"]["column_list"]) == {*config.features.all, "diagnosis"}
    assert config.schema_path.is_file() and 'name: "diagnosis"' in config.schema_path.read_text()
    assert [s["span"] for s in result["spans"]] == ["span-2019", "span-2020", "span-2021"]  # type: ignore[index]
    assert result["next"] == "runway run biopsies --history"
    text = (settings.config_dir / "biopsies.yaml").read_text()
    assert "'malignant' is the positive class (the rarer value)" in text  # the reasons are in the file
    assert "classes: [benign, malignant]" in text


def test_init_never_overwrites_a_pipeline_unless_forced(scaffolded: tuple[Settings, dict[str, object]]) -> None:
    from pipeline_components.runtime.scaffold import scaffold

    settings, _ = scaffolded
    source = Path(str(load_pipeline_config(settings.config_dir / "biopsies.yaml").source_path))
    with pytest.raises(ConfigError, match="a pipeline named 'biopsies' exists"):
        scaffold(settings, name="biopsies", source=source, label="diagnosis", span_column="year")
    with pytest.raises(ConfigError, match="pipeline name 'Biopsies 2'"):
        scaffold(settings, name="Biopsies 2", source=source, label="diagnosis")


def test_a_label_of_class_names_trains_is_evaluated_and_served_by_name(
    scaffolded: tuple[Settings, dict[str, object]], tmp_path: Path
) -> None:
    """Transform maps the names to indices, TFMA scores against them, serving_classify answers with the names."""
    import tensorflow as tf
    from tfx import v1 as tfx

    from pipeline_components.pipeline.factory import eval_config
    from pipeline_components.pipeline.slices import model_slice, run_slice

    settings, _ = scaffolded
    config = load_pipeline_config(settings.config_dir / "biopsies.yaml")
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    for span in ("span-2019", "span-2020"):
        shutil.copy(settings.data_dir / "biopsies" / span / "data.csv", csv_dir / f"{span}.csv")
    nodes = model_slice(csv_dir, config=config, pipeline_splits=True, train=(150, 5))
    evaluator = tfx.components.Evaluator(
        examples=nodes.example_gen.outputs["examples"],
        example_splits=["eval"],
        model=nodes.trainer.outputs["model"],
        eval_config=eval_config(config.with_overrides({"evaluation.lower_bound": 0.8})),
    )
    run_slice([*nodes.components, evaluator], tmp_path, name="string_labels")

    (blessing,) = (tmp_path / "pipeline" / "Evaluator" / "blessing").glob("*/BLESSED")
    assert blessing.is_file()  # AUC against Transform's index of the label, above 0.8
    (model_dir,) = (tmp_path / "pipeline" / "Trainer" / "model").glob("*/Format-Serving")
    loaded = tf.saved_model.load(str(model_dir))
    examples = (tmp_path / "pipeline" / "CsvExampleGen" / "examples").glob("*/Split-eval/*.gz")
    records = [r.numpy() for r in tf.data.TFRecordDataset(list(map(str, examples)), compression_type="GZIP").take(4)]
    answer = loaded.signatures["serving_classify"](inputs=tf.constant(records))
    assert answer["classes"].numpy()[0].tolist() == [b"benign", b"malignant"]
    transformed = loaded.signatures["transform_features"](examples=tf.constant(records))
    assert set(transformed["label_xf"].numpy().tolist()) <= {0, 1}
