"""The training statistics of a served version, found through ML Metadata's lineage.

A version the Pusher pushed is a ``PushedModel`` whose ``pushed_version`` names it. Upstream of it (Pusher <-
InfraValidator <- Trainer) is the Trainer execution; the Trainer's ``examples`` are Transform's output, whose own
``examples`` input is the rolling window of raw spans (``pipeline/factory.py``). Each raw span was read by a
StatisticsGen execution: its ``statistics`` output, the ``train`` split, is what that span looked like when the
model learned from it, in the same statistics the data gate compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ml_metadata.proto import metadata_store_pb2

from pipeline_components.errors import NoTrainingStatisticsError
from pipeline_components.metadata.reader import RunReader, custom_property

INPUT, OUTPUT = metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.OUTPUT


@dataclass(frozen=True)
class SpanStatistics:
    """The statistics of one span a version was trained on.

    Attributes:
        span: the span number.
        uri: the StatisticsGen artifact's folder (``Split-<split>/FeatureStats.pb`` inside).
        artifact_id: that artifact's id in ML Metadata.
    """

    span: int
    uri: str
    artifact_id: int

    def split_path(self, split: str = "train") -> Path:
        """The ``FeatureStats.pb`` of one split (StatisticsGen's layout)."""
        return Path(self.uri) / f"Split-{split}" / "FeatureStats.pb"


def _nodes_upstream(reader: RunReader, artifact_id: int, node: str) -> list[int]:
    """Executions of ``node`` upstream of an artifact (breadth first, nearest first)."""
    found, seen, frontier = [], set(), [artifact_id]
    while frontier:
        current = frontier.pop(0)
        execution_id = reader.producer(current)
        if execution_id is None or execution_id in seen:
            continue
        seen.add(execution_id)
        if reader.node_of(execution_id) == node:
            found.append(execution_id)
            continue
        for artifacts in reader.events(execution_id, INPUT).values():
            frontier.extend(a.id for a in artifacts)
    return found


def _raw_examples(reader: RunReader, examples: list[metadata_store_pb2.Artifact]) -> list[metadata_store_pb2.Artifact]:
    """Follow ``examples`` inputs up to the spans an ExampleGen wrote (through Transform, when there is one)."""
    raw: list[metadata_store_pb2.Artifact] = []
    for artifact in examples:
        execution_id = reader.producer(artifact.id)
        if execution_id is None or reader.node_of(execution_id).endswith("ExampleGen"):
            raw.append(artifact)
        else:
            raw.extend(_raw_examples(reader, reader.events(execution_id, INPUT).get("examples", [])))
    return raw


def _statistics_of(reader: RunReader, examples_id: int) -> metadata_store_pb2.Artifact | None:
    """The newest ``statistics`` a StatisticsGen execution wrote from these examples."""
    consumers = {e.execution_id for e in reader.store.get_events_by_artifact_ids([examples_id]) if e.type == INPUT}
    outputs = [
        artifact
        for execution_id in consumers
        if reader.node_of(execution_id) == "StatisticsGen"
        for artifact in reader.events(execution_id, OUTPUT).get("statistics", [])
    ]
    return max(outputs, key=lambda a: a.id, default=None)


def training_statistics(reader: RunReader, version: int) -> list[SpanStatistics]:
    """The statistics of every span ``version`` was trained on, newest span first.

    Args:
        reader: the pipeline's ML Metadata.
        version: the served version (the model store's folder name, the ``version`` a request log row carries).

    Returns:
        One entry per span of the Trainer's window.

    Raises:
        NoTrainingStatisticsError: no push of this version, no Trainer upstream of it, or no statistics of its spans.
    """
    where = f"pipeline '{reader.pipeline_name}' (ML Metadata at {reader.location})"
    pushed = [a for a in reader.pushed_models() if str(custom_property(a, "pushed_version")) == str(version)]
    if not pushed:
        raise NoTrainingStatisticsError(
            f"version {version} was not pushed by {where}: no training statistics to compare its traffic with; "
            "monitor a version this pipeline pushed, or check RUNWAY_HOME / RUNWAY_METADATA_URL"
        )
    trainers = _nodes_upstream(reader, pushed[0].id, "Trainer")
    if not trainers:
        raise NoTrainingStatisticsError(
            f"no Trainer execution upstream of version {version}'s push in {where}: its lineage is incomplete"
        )
    spans: dict[int, SpanStatistics] = {}
    for examples in _raw_examples(reader, reader.events(trainers[0], INPUT).get("examples", [])):
        statistics = _statistics_of(reader, examples.id)
        # TFX records the span as a property of Examples, and ExampleGen as a custom property too.
        span = (
            examples.properties["span"].int_value
            if "span" in examples.properties
            else custom_property(examples, "span")
        )
        if statistics is not None and span is not None and int(span) not in spans:
            spans[int(span)] = SpanStatistics(span=int(span), uri=statistics.uri, artifact_id=statistics.id)
    if not spans:
        raise NoTrainingStatisticsError(
            f"version {version} of {where} was trained on spans that have no StatisticsGen statistics in ML "
            "Metadata; run the pipeline (StatisticsGen) on its spans, or push a version trained by a full run"
        )
    return [spans[span] for span in sorted(spans, reverse=True)]
