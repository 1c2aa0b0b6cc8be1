from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import ParamValidationError

from pipeline_components import boundary as params
from pipeline_components.config import STRATEGIES, TFLITE_VARIANTS, load_pipeline_config
from pipeline_components.errors import ConfigError
from pipeline_components.fleet.tasks import serving_params
from pipeline_components.orchestration.dag_factory import airflow_params
from tests.conftest import CONFIGS


@pytest.fixture
def flights():  # type: ignore[no-untyped-def]
    return load_pipeline_config(CONFIGS / "flights.yaml")


def test_defaults_come_from_the_configuration(flights) -> None:  # type: ignore[no-untyped-def]
    values = params.defaults(flights)
    assert values["train_steps"] == flights.model.train_steps
    assert values["window_spans"] == flights.data.window_spans
    assert values["eval_lower_bound"] == flights.evaluation.lower_bound
    assert values["serving_model_name"] == "flights_delay"
    assert values["span"] is None and values["dry_run"] is False
    assert all(p.description for p in params.PARAMETERS)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"train_steps": 0}, "'train_steps' = 0: must be >= 1", id="steps-zero"),
        pytest.param({"train_steps": "many"}, "'train_steps' = 'many': expected integer", id="steps-text"),
        pytest.param({"train_steps": True}, "'train_steps' = True: expected integer", id="steps-bool"),
        pytest.param({"learning_rate": 0}, "'learning_rate' = 0: must be > 0", id="lr-zero"),
        pytest.param({"eval_lower_bound": 1.5}, "'eval_lower_bound' = 1.5: must be <= 1", id="bound"),
        pytest.param({"serving_model_name": "Bad Name"}, "'serving_model_name'", id="model-name"),
        pytest.param({"dry_run": "yes"}, "'dry_run' = 'yes': expected boolean", id="dry-run-text"),
        pytest.param({"epochs_typo": 3}, "unknown run parameter", id="unknown"),
    ],
)
def test_invalid_values_name_the_parameter(flights, values: dict[str, object], message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        params.validate(values, flights)
    assert message in str(caught.value)


def test_valid_values_are_kept_and_defaults_filled(flights) -> None:  # type: ignore[no-untyped-def]
    resolved = params.validate({"span": 4, "train_steps": 10, "dry_run": True}, flights)
    assert resolved["span"] == 4 and resolved["train_steps"] == 10 and resolved["dry_run"] is True
    assert resolved["learning_rate"] == flights.model.learning_rate


def test_spans_are_read_from_the_data_folder(flights, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name in ("span-2013-01", "span-2013-02", "span-2013-11", ".span-2013-03.tmp", "notes"):
        (tmp_path / "flights" / name).mkdir(parents=True)
    assert params.available_spans(flights, tmp_path) == [1, 2, 11]
    assert params.span_folder_glob(flights, 2) == "span-2013-02"
    assert params.check_against_data(params.validate({"span": 11}, flights), flights, tmp_path) == [1, 2, 11]
    with pytest.raises(ConfigError, match=r"'span' = 7: no folder span-2013-07 .* prepared spans: \[1, 2, 11\]"):
        params.check_against_data(params.validate({"span": 7}, flights), flights, tmp_path)


def test_no_data_at_all_says_how_to_prepare_it(flights, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="runway data prepare flights"):
        params.check_against_data(params.defaults(flights), flights, tmp_path)


def test_allow_breaking_change_is_an_explicit_boolean(flights) -> None:  # type: ignore[no-untyped-def]
    assert params.defaults(flights)["allow_breaking_change"] is False
    assert params.validate({"allow_breaking_change": True}, flights)["allow_breaking_change"] is True
    with pytest.raises(ConfigError, match="'allow_breaking_change' = 'true': expected boolean"):
        params.validate({"allow_breaking_change": "true"}, flights)


def test_tflite_variants_default_to_the_configuration_and_are_checked(flights) -> None:  # type: ignore[no-untyped-def]
    assert params.defaults(flights)["tflite_variants"] == flights.tflite.variants
    assert params.tflite_variant_list("int8, qat_int8") == ["int8", "qat_int8"]
    assert params.tflite_variant_list("none") == []
    assert params.tflite_variant_list("") is None  # the configuration's list
    assert params.tflite_variant_list(None) == []  # nothing chosen in the form
    assert params.validate({"tflite_variants": ["float16"]}, flights)["tflite_variants"] == ["float16"]
    with pytest.raises(ConfigError, match=r"'tflite_variants' = \['int4'\]: expected distinct names from"):
        params.validate({"tflite_variants": ["int4"]}, flights)
    with pytest.raises(ConfigError, match="expected distinct names"):
        params.validate({"tflite_variants": ["int8", "int8"]}, flights)
    with pytest.raises(ConfigError, match=r"'tflite_variants' = 'int8': expected \['array', 'null'\]"):
        params.validate({"tflite_variants": "int8"}, flights)  # the command line's text is converted first


def test_strategy_and_workers_default_to_the_configuration_and_are_checked(flights) -> None:  # type: ignore[no-untyped-def]
    assert params.defaults(flights)["strategy"] == flights.training.strategy
    assert params.defaults(flights)["workers"] == flights.training.workers
    resolved = params.validate({"strategy": "parameter_server", "workers": 3}, flights)
    assert (resolved["strategy"], resolved["workers"]) == ("parameter_server", 3)
    with pytest.raises(ConfigError, match="'strategy' = 'horovod': must be one of"):
        params.validate({"strategy": "horovod"}, flights)
    with pytest.raises(ConfigError, match="strategy 'tpu' needs 'tpu'"):  # the strategy's own rules, before a run
        params.validate({"strategy": "tpu"}, flights)
    with pytest.raises(ConfigError, match="workers >= 2"):
        params.validate({"strategy": "multi_worker_mirrored", "workers": 1}, flights)


def test_repush_named_by_the_pushers_skip_message_is_a_parameter(flights) -> None:  # type: ignore[no-untyped-def]
    # Pusher's skip says "run parameter repush=true pushes a retrained model": the trigger must accept it.
    assert params.defaults(flights)["repush"] is False
    assert params.validate({"repush": True}, flights)["repush"] is True
    with pytest.raises(ConfigError, match="'repush' = 'yes': expected boolean"):
        params.validate({"repush": "yes"}, flights)


# -- the trigger form (Airflow's Params, as the DAG builds them) ------------------------------------------------------


@pytest.fixture(params=["flights", "penguins"])
def form(request: pytest.FixtureRequest) -> ParamsDict:
    return ParamsDict(airflow_params(load_pipeline_config(CONFIGS / f"{request.param}.yaml")))


def test_every_parameter_has_a_description_and_a_default_the_form_accepts(form: ParamsDict) -> None:
    for name in form:
        assert form.get_param(name).description, name
    form.validate()  # the defaults, as the form shows them, trigger a run


def test_the_tflite_variants_are_a_multiple_choice_over_the_known_variants(form: ParamsDict) -> None:
    schema = form.get_param("tflite_variants").schema
    # What Airflow 3's form renders as a multi-select: type array with a list of `examples` to pick from.
    assert schema["type"][0] == "array" and schema["examples"] == list(TFLITE_VARIANTS)
    assert schema["items"]["enum"] == list(TFLITE_VARIANTS)
    assert form.get_param("strategy").schema["enum"] == list(STRATEGIES)  # a single choice


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("tflite_variants", ["int9"], id="unknown-variant"),
        pytest.param("tflite_variants", ["int8", "int8"], id="repeated-variant"),
        pytest.param("tflite_variants", "int8", id="variants-as-text"),
        pytest.param("strategy", "fastest", id="strategy"),
        pytest.param("train_steps", 0, id="steps"),
        pytest.param("window_spans", 500, id="window"),
        pytest.param("learning_rate", 0, id="learning-rate"),
        pytest.param("serving_model_name", "Bad Name", id="model-name"),
        pytest.param("dry_run", "yes", id="dry-run"),
    ],
)
def test_a_wrong_value_is_refused_at_trigger_time_naming_the_parameter(
    form: ParamsDict, name: str, value: object
) -> None:
    """What Airflow does with a trigger's conf (the form, the REST API) before any run exists."""
    with pytest.raises(ParamValidationError, match=f"Invalid input for param {name}"):
        form[name] = value
        form.validate()


def test_the_serving_form_refuses_an_unknown_action() -> None:
    form = ParamsDict(serving_params())
    form.validate()
    with pytest.raises(ParamValidationError, match="Invalid input for param action"):
        form["action"] = "demote"
        form.validate()


def test_variants_from_the_command_line_become_the_forms_list(flights) -> None:  # type: ignore[no-untyped-def]
    assert params.from_command_line({"tflite_variants": "int8, float16"}, flights) == {
        "tflite_variants": ["int8", "float16"]
    }
    assert params.from_command_line({"tflite_variants": "none"}, flights) == {"tflite_variants": []}
    assert params.from_command_line({"tflite_variants": ""}, flights) == {"tflite_variants": flights.tflite.variants}
    with pytest.raises(ConfigError, match="'tflite_variants' = 'int9'"):
        params.from_command_line({"tflite_variants": "int9"}, flights)
    resolved = params.validate({"tflite_variants": ["qat_int8"]}, flights)
    assert resolved["tflite_variants"] == ["qat_int8"]
    with pytest.raises(ConfigError, match="run parameter 'tflite_variants'"):
        params.validate({"tflite_variants": ["int9"]}, flights)
