"""The trusted set: the 'eval' splits of the spans the served model was blessed on, resolved from ML Metadata.

The served model is the latest blessed one (what ``LatestBlessedModelStrategy`` gives the Evaluator as its
baseline). Its blessing was written by an Evaluator execution whose inputs ML Metadata recorded: the span that run
ingested (``examples``) and that run's own trusted set (``trusted_examples``). Those Examples artifacts, the newest
``spans`` spans of them, are the trusted set of the next candidate: data that passed every gate and on which the
served model was judged good. The resolver's output and the next Evaluator's input events record exactly which
artifacts were used (lineage).
"""

from __future__ import annotations

from typing import Any

from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.components.common import resolver

# The Evaluator's input keys that hold the examples a blessing was judged on (components/evaluator/component.py).
JUDGED_ON = ("examples", "trusted_examples")


def _span(artifact: Any) -> int:
    return int(artifact.get_int_custom_property("span") or artifact.span)


def latest_blessing(blessings: list[Any]) -> Any | None:
    """The blessing of the latest blessed model (the highest model id, as LatestBlessedModelStrategy picks it)."""
    blessed = [b for b in blessings if b.get_int_custom_property("blessed") == 1]
    return max(blessed, key=lambda b: (b.get_int_custom_property("current_model_id"), b.id), default=None)


def judged_on(store: Any, blessing_id: int) -> set[int]:
    """The ids of the Examples artifacts the Evaluator execution that wrote ``blessing_id`` was given."""
    producers = [
        e.execution_id
        for e in store.get_events_by_artifact_ids([blessing_id])
        if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
    ]
    if not producers:
        return set()
    return {
        e.artifact_id
        for e in store.get_events_by_execution_ids(producers[:1])
        if e.type in (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)
        and e.path.steps
        and e.path.steps[0].key in JUDGED_ON
    }


class TrustedExamplesStrategy(resolver.ResolverStrategy):
    """Resolve ``examples`` to the trusted set (see the module docstring); ``model_blessing`` to the blessing it
    comes from. Nothing is blessed yet, or ``spans`` is 0: both empty.

    Used as ``tfx.dsl.Resolver(strategy_class=TrustedExamplesStrategy, config={"spans": 3},
    model_blessing=Channel(type=ModelBlessing), examples=Channel(type=Examples, producer_component_id=...))``.
    """

    def __init__(self, spans: int = 3) -> None:
        self.spans = int(spans)

    def resolve_artifacts(self, store: Any, input_dict: dict[str, list[Any]]) -> dict[str, list[Any]] | None:
        empty: dict[str, list[Any]] = {"examples": [], "model_blessing": []}
        blessing = latest_blessing(list(input_dict.get("model_blessing") or []))
        if blessing is None or self.spans <= 0:
            return empty
        ids = judged_on(store, blessing.id)
        newest: dict[int, Any] = {}
        for artifact in input_dict.get("examples") or []:
            if artifact.id in ids and (_span(artifact) not in newest or artifact.id > newest[_span(artifact)].id):
                newest[_span(artifact)] = artifact
        chosen = [newest[span] for span in sorted(newest, reverse=True)[: self.spans]]
        return {"examples": chosen, "model_blessing": [blessing]}
