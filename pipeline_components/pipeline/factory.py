"""The retraining pipeline as a pure factory: every path and knob is an argument, nothing is read or written.

One run ingests one span (the newest the data folder holds) and retrains on a rolling window of the newest
ingested spans:

    CsvExampleGen (newest span) ─┬─ StatisticsGen ─┬─ ExampleValidator ◄─ ImportSchemaGen (committed schema)
                                 │                 └─ DriftSkewValidator (vs the previous span; window vs eval)
                                 ├─ GreatExpectationsValidator (raw CSV, committed suite)
                                 ├─ DeliveryValidator (raw CSV: rows, calendar, label shares vs previous spans)
                                 │                        │ (data gate: all four validators before training)
                                 │          rolling window of spans ─► Transform ─► Trainer
                                 │                                                    │
                                 ├─────────────── eval split ─► Evaluator ◄───────────┤
                                 │   trusted set ─┘ ▲ baseline (latest blessed)       ├─► ModelInspector (contract gate)
                                 └─ eval examples ─► InfraValidator ◄────────────────┘
                                                       │ warmed model + infra blessing
                                                       ▼
                                    Pusher (warmed model; only with the Evaluator's AND the infra blessing,
                                            and after the serving-contract gate passed)

Beside the serving path, when the configuration lists ``tflite.variants``: Trainer ─► TFLiteVariants (build,
measure and gate on-device variants) ─► TFLitePublisher ◄─ Pusher (accepted variants beside the pushed version).

ExampleGen takes one span per execution (TFX refuses multi-span ranges there), so the window is built the way
TFX intends: from the Examples artifacts that earlier runs recorded in ML Metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.dsl.input_resolution.canned_resolver_functions import rolling_range

from pipeline_components.components.artifacts import SpanProfile
from pipeline_components.components.delivery_validator import DeliveryValidator
from pipeline_components.components.drift_skew_validator import DriftSkewValidator
from pipeline_components.components.evaluator import Evaluator, TrustedExamplesStrategy
from pipeline_components.components.great_expectations_validator import GreatExpectationsValidator
from pipeline_components.components.infra_validator import InfraValidator
from pipeline_components.components.model_inspector import ModelInspector
from pipeline_components.components.pusher import Pusher
from pipeline_components.components.tflite_variants import TFLitePublisher, TFLiteVariants
from pipeline_components.config import PipelineConfig
from pipeline_components.training.settings import trainer_training_config

LATEST_BLESSED_MODEL_RESOLVER = "latest_blessed_model_resolver"
TRUSTED_EXAMPLES_RESOLVER = "trusted_examples_resolver"
# Evaluator (TFMA) reads serialized tf.Examples: it is pinned to this signature (see models/tabular.py).
EVAL_SIGNATURE = "serving_tf_example"
# A label of class names: TFMA reads its index from the model's Transform signature (models/tabular.py).
TRANSFORM_SIGNATURE = "transform_features"
TRANSFORMED_LABEL = "label_xf"


def model_custom_config(config: PipelineConfig) -> dict[str, object]:
    """What Transform's preprocessing_fn and Trainer's run_fn read from the configuration."""
    return {
        "numeric": list(config.features.numeric),
        "categorical": list(config.features.categorical),
        "label": config.label.column,
        "label_kind": config.label.kind,
        "num_classes": config.label.num_classes,
        # A label given as class names is mapped to its index by Transform; served answers name the classes.
        "label_values": config.label.values,
        "classes": list(config.label.classes),
        "hidden_units": list(config.model.hidden_units),
        "embedding_dim": config.model.embedding_dim,
        "learning_rate": config.model.learning_rate,
        "batch_size": config.model.batch_size,
    }


def split_config(config: PipelineConfig) -> Any:
    """ExampleGen's output: the configuration's train and eval hash buckets (``tfx.proto.Output``)."""
    return tfx.proto.Output(
        split_config=tfx.proto.SplitConfig(
            splits=[
                tfx.proto.SplitConfig.Split(name="train", hash_buckets=config.data.train_buckets),
                tfx.proto.SplitConfig.Split(name="eval", hash_buckets=config.data.eval_buckets),
            ]
        )
    )


def trainer(
    config: PipelineConfig, *, transform: Any, schema: Any, steps: tuple[int, int], custom_config: dict[str, Any]
) -> Any:
    """The Trainer on Transform's outputs: the model module's ``run_fn``, ``steps`` = (train, eval) steps."""
    return tfx.components.Trainer(
        run_fn=f"{config.model.module}.run_fn",
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema,
        train_args=tfx.proto.TrainArgs(num_steps=steps[0]),
        eval_args=tfx.proto.EvalArgs(num_steps=steps[1]),
        custom_config=custom_config,
    )


def tflite_variants(
    *, trainer: Any, transform: Any, examples: Any, variants: list[str], settings: dict[str, Any]
) -> TFLiteVariants:
    """TFLiteVariants of the Trainer's model, calibrated on Transform's outputs, measured on ``examples``."""
    return TFLiteVariants(
        model=trainer.outputs["model"],
        transform_graph=transform.outputs["transform_graph"],
        transformed_examples=transform.outputs["transformed_examples"],
        examples=examples,
        variants=list(variants),
        settings=settings,
    )


def positive_class(config: PipelineConfig) -> str | None:
    """A binary label's positive class as the CSV holds it (``1``, or the second class name); None for multiclass."""
    if config.label.kind != "binary":
        return None
    return config.label.classes[1] if config.label.values == "name" else "1"


def eval_config(config: PipelineConfig) -> tfma.EvalConfig:
    """TFMA config with the value threshold and the change threshold against the baseline."""
    metric = config.evaluation.metric
    if config.label.kind == "binary":
        # No `config` JSON naming a metric: its quotes would reach ML Metadata backslash-escaped inside the
        # Evaluator's eval_config, which ML Metadata 1.21 cannot store on PostgreSQL (runtime/compile.py:
        # postgres_unsafe). TFMA's default names are right but AUC's ("a_u_c"): the Evaluator's executor names it
        # "auc" (components/evaluator/verdict.py: with_metric_names).
        metrics = [
            tfma.MetricConfig(class_name="AUC"),
            tfma.MetricConfig(class_name="BinaryAccuracy"),
            tfma.MetricConfig(class_name="ExampleCount"),
            # The positive rate and what each model expects of it: evidence on the labels (verdict.py).
            tfma.MetricConfig(class_name="MeanLabel"),
            tfma.MetricConfig(class_name="MeanPrediction"),
        ]
    else:
        metrics = [
            tfma.MetricConfig(class_name="SparseCategoricalAccuracy"),
            tfma.MetricConfig(class_name="ExampleCount"),
        ]
    for metric_config in metrics:
        name = metric_config.class_name
        short = {
            "AUC": "auc",
            "BinaryAccuracy": "binary_accuracy",
            "SparseCategoricalAccuracy": "sparse_categorical_accuracy",
        }.get(name)
        if short == metric:
            metric_config.threshold.CopyFrom(
                tfma.MetricThreshold(
                    value_threshold=tfma.GenericValueThreshold(lower_bound={"value": config.evaluation.lower_bound}),
                    change_threshold=tfma.GenericChangeThreshold(
                        direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                        absolute={"value": -config.evaluation.max_regression},
                    ),
                )
            )
    # A label of class names is not a number TFMA can score: it reads Transform's index of it (label_xf) from the
    # model's transform_features signature instead (models/tabular.py), as TFX's penguin example does.
    by_name = config.label.values == "name"
    model_spec = tfma.ModelSpec(
        signature_name=EVAL_SIGNATURE,
        label_key=TRANSFORMED_LABEL if by_name else config.label.column,
        preprocessing_function_names=[TRANSFORM_SIGNATURE] if by_name else [],
    )
    return tfma.EvalConfig(
        model_specs=[model_spec],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )


def create_pipeline(
    *,
    config: PipelineConfig,
    data_root: str | Path,
    pipeline_root: str | Path,
    metadata_connection_config: metadata_store_pb2.ConnectionConfig,
    serving_model_dir: str | Path,
    beam_pipeline_args: list[str] | None = None,
) -> tfx.dsl.Pipeline:
    """Build the TFX pipeline for one configuration.

    Args:
        config: the validated pipeline configuration.
        data_root: the dataset folder holding the span folders.
        pipeline_root: where TFX writes artifacts.
        metadata_connection_config: the ML Metadata store (``metadata.connection.connection_config``, without
            the password: the compiled IR carries it).
        serving_model_dir: the TF Serving model base path (``<store>/<model_name>``); Pusher writes
            ``<serving_model_dir>/<version>/saved_model.pb``.
        beam_pipeline_args: Beam options for the data components (runner, parallelism).

    Returns:
        The logical pipeline, ready for TFX's compiler.
    """
    example_gen = tfx.components.CsvExampleGen(
        input_base=str(data_root),
        input_config=tfx.proto.Input(
            splits=[tfx.proto.Input.Split(name="single_split", pattern=config.data.span_pattern)]
        ),
        output_config=split_config(config),
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=str(config.schema_path))
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )

    expectations_validator = GreatExpectationsValidator(
        examples=example_gen.outputs["examples"],
        input_base=str(data_root),
        span_pattern=config.data.span_pattern,
        suite_file=str(config.expectations_path),
    )
    # Every span's statistics, from any run (a plain Channel, see below): the previous span and the window.
    statistics_history = tfx.dsl.Channel(
        type=tfx.types.standard_artifacts.ExampleStatistics,
        producer_component_id=statistics_gen.id,
        output_key="statistics",
    )
    drift_skew_validator = DriftSkewValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        statistics_history=statistics_history,
        drift=dict(config.validation.drift),
        skew=dict(config.validation.skew),
        categorical=list(config.features.categorical),
        window_spans=config.data.window_spans,
    )
    delivery_validator = DeliveryValidator(
        examples=example_gen.outputs["examples"],
        # Every span's profile, from any run (a plain Channel with no producer: all of this pipeline's profiles).
        profile_history=tfx.dsl.Channel(type=SpanProfile),
        input_base=str(data_root),
        span_pattern=config.data.span_pattern,
        label=config.label.column,
        positive=positive_class(config),
        history_spans=config.validation.history_spans,
        max_share_change=config.validation.label.max_share_change,
        delivery=config.validation.delivery.model_dump(),
    )

    # Every span this pipeline has ingested, in any run: a plain Channel (unlike example_gen.outputs[...], which
    # the compiler scopes to the current pipeline run) queries ML Metadata across runs.
    ingested_spans = tfx.dsl.Channel(
        type=tfx.types.standard_artifacts.Examples, producer_component_id=example_gen.id, output_key="examples"
    )
    window = rolling_range(ingested_spans, num_spans=config.data.window_spans, min_spans=1)
    custom_config = model_custom_config(config)
    transform = tfx.components.Transform(
        examples=window,
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=f"{config.model.module}.preprocessing_fn",
        custom_config=custom_config,
    )
    # The window's channel does not carry its producer: order Transform after this run's ingestion explicitly,
    # and after data validation.
    transform.add_upstream_node(example_gen)
    transform.add_upstream_node(example_validator)
    transform.add_upstream_node(expectations_validator)
    transform.add_upstream_node(drift_skew_validator)
    transform.add_upstream_node(delivery_validator)
    model_trainer = trainer(
        config,
        transform=transform,
        schema=schema_gen.outputs["schema"],
        steps=(config.model.train_steps, config.model.eval_steps),
        # The distribution strategy and its settings (docs/training.md); the run parameter `strategy` overrides it.
        custom_config={**custom_config, "training": trainer_training_config(config)},
    )
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id(LATEST_BLESSED_MODEL_RESOLVER)
    # The trusted set: the 'eval' splits of the spans the served (latest blessed) model was blessed on.
    trusted_resolver = tfx.dsl.Resolver(
        strategy_class=TrustedExamplesStrategy,
        config={"spans": config.evaluation.trusted_spans},
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
        examples=ingested_spans,
    ).with_id(TRUSTED_EXAMPLES_RESOLVER)
    trusted_resolver.add_upstream_node(example_gen)  # a plain channel carries no producer: after this run's ingestion
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        example_splits=["eval"],
        model=model_trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        trusted_examples=trusted_resolver.outputs["examples"],
        eval_config=eval_config(config),
        max_baseline_drop=config.evaluation.max_baseline_drop,
        trusted_max_regression=config.evaluation.trusted_max_regression,
        label_ratio=(config.evaluation.min_label_ratio, config.evaluation.max_label_ratio),
    )
    model_inspector = ModelInspector(
        model=model_trainer.outputs["model"],
        contract=config.serving.contract.model_dump(),
        serving_model_dir=str(serving_model_dir),
    )
    infra = config.serving.infra_validation
    infra_validator = InfraValidator(
        model=model_trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        model_name=config.serving.model_name,
        warmup_records=infra.warmup_records,
        query_examples=infra.query_examples,
        timeout_s=infra.timeout_s,
    )
    # The Pusher pushes the warmed copy, and only with both blessings (tests/runtime/test_pusher_wiring.py).
    pusher = Pusher(
        model=infra_validator.outputs["warmed_model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=str(serving_model_dir))
        ),
    )
    pusher.add_upstream_node(model_inspector)  # the serving-contract gate must pass first
    # On-device TFLite variants (docs/tflite.md), beside the serving path: built, measured and gated from the
    # Trainer's model, published after the Pusher. Only when the configuration lists variants.
    tflite_nodes: list[TFLiteVariants | TFLitePublisher] = []
    if config.tflite.variants:
        variants = tflite_variants(
            trainer=model_trainer,
            transform=transform,
            examples=example_gen.outputs["examples"],
            variants=list(config.tflite.variants),
            settings={**config.tflite.model_dump(exclude={"variants"}), "batch_size": config.model.batch_size},
        )
        tflite_publisher = TFLitePublisher(
            tflite_models=variants.outputs["tflite_models"], pushed_model=pusher.outputs["pushed_model"]
        )
        tflite_nodes = [variants, tflite_publisher]
    return tfx.dsl.Pipeline(
        pipeline_name=config.name,
        pipeline_root=str(pipeline_root),
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            expectations_validator,
            drift_skew_validator,
            delivery_validator,
            transform,
            model_trainer,
            model_resolver,
            trusted_resolver,
            evaluator,
            model_inspector,
            infra_validator,
            pusher,
            *tflite_nodes,
        ],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [],
    )
