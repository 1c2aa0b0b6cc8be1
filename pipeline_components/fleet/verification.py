"""The rollout's verify step: does an instance answer real examples the way the exported model did?

The Pusher stores, inside each version (``assets.extra/runway_verification.json``, see
``pipeline_components.components.pusher.verification``), real examples with the exported model's own predictions
for them. ``verify_instance`` sends each example, one request at a time (latency as a client sees it), to the
``canary`` label of one instance over REST or gRPC, and compares every output with the stored prediction within a
relative tolerance, and the median latency with a budget.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from typing import Any

from pipeline_components.fleet import CANARY_LABEL, protos
from pipeline_components.fleet.instances import Instance, InstanceError
from pipeline_components.fleet.store import ModelStore

Outputs = dict[str, list[float]]  # output name -> flat values of one example


@dataclass(frozen=True, kw_only=True)
class Tolerances:
    """What counts as answering as exported: a relative difference and a median latency budget."""

    tolerance: float = 1e-4
    latency_budget_ms: float = 1000.0
    rpc_timeout_s: float = 30.0


def load_samples(store: ModelStore, model: str, version: int) -> dict[str, Any] | None:
    """The verification samples stored with ``version`` (None when it was pushed without them)."""
    path = store.verification_path(model, version)
    if not path.is_file():
        return None
    return dict(json.loads(path.read_text()))


def verify_instance(
    instance: Instance, protocol: str, samples: dict[str, Any], *, model: str, limits: Tolerances
) -> dict[str, Any]:
    """Ask ``instance``'s ``canary`` label every sample over ``protocol`` (``rest`` or ``grpc``).

    Returns:
        The outcome: instance, protocol, examples, median and max latency in ms, the largest difference and where
        it was, and ``failure`` (empty when the instance answered as exported, within the budget).

    Raises:
        InstanceError: the instance did not answer.
    """
    rows: list[dict[str, Any]] = samples["rows"]
    expected: dict[str, list[list[float]]] = samples["expected"]
    signature = samples.get("signature_name", "serving_default")
    dtypes = {name: int(dtype) for name, dtype in samples.get("dtypes", {}).items()}
    latencies = []
    answers: list[Outputs] = []
    for row in rows:
        if protocol == "rest":
            body = {"signature_name": signature, "instances": [row]}
            path = f"/v1/models/{model}/labels/{CANARY_LABEL}:predict"
            answer, seconds = instance.predict_rest(path, body, limits.rpc_timeout_s)
            answers.append(rest_outputs(answer, list(expected)))
        else:
            columns = {name: [value] for name, value in row.items()}
            request = protos.predict_request(model, columns, dtypes, label=CANARY_LABEL, signature_name=signature)
            outputs, seconds = instance.predict_grpc(request, limits.rpc_timeout_s)
            answers.append({name: [float(v) for v in values] for name, values in outputs.items()})
        latencies.append(seconds * 1000)
    where = f"{instance.name} {protocol}"
    failure, worst_diff, worst_at = compare(answers, expected, tolerance=limits.tolerance, where=where)
    median = statistics.median(latencies)
    if not failure and median > limits.latency_budget_ms:
        failure = f"{where}: median latency {median:.1f} ms is over the budget of {limits.latency_budget_ms:.0f} ms"
    return {
        "instance": instance.name,
        "protocol": protocol,
        "examples": len(rows),
        "median_ms": round(median, 2),
        "max_ms": round(max(latencies), 2),
        "max_abs_diff": worst_diff,
        "max_diff_at": worst_at,
        "failure": failure,
    }


def compare(
    answers: list[Outputs], expected: dict[str, list[list[float]]], *, tolerance: float, where: str
) -> tuple[str, float, str]:
    """Compare each example's answer with the exported model's prediction.

    Returns:
        (the first failure or "", the largest absolute difference seen, which example and output it was).
    """
    worst_diff, worst_at = 0.0, ""
    for index, answer in enumerate(answers):
        for name, want in expected.items():
            got = answer.get(name)
            if got is None or len(got) != len(want[index]):
                return (
                    f"{where}: output {name} of example {index} is {got}, expected {want[index]}",
                    worst_diff,
                    worst_at,
                )
            for g, w in zip(got, want[index], strict=True):
                diff = abs(g - w)
                if diff > worst_diff:
                    worst_diff, worst_at = diff, f"example {index} {name}"
                # Relative above 1, absolute below: small outputs (probabilities) are compared absolutely.
                if not math.isfinite(g) or diff > tolerance * max(1.0, abs(w)):
                    failure = (
                        f"{where}: example {index} output {name} is {g:.6g}, the exported model says {w:.6g} "
                        f"(tolerance {tolerance:g})"
                    )
                    return failure, worst_diff, worst_at
    return "", worst_diff, worst_at


def rest_outputs(answer: Any, names: list[str]) -> Outputs:
    """A one-example REST ``predictions`` answer as output name -> flat values."""
    prediction = answer["predictions"][0]
    if isinstance(prediction, dict):
        return {name: _flat(value) for name, value in prediction.items()}
    return {names[0]: _flat(prediction)} if len(names) == 1 else {}


def _flat(value: Any) -> list[float]:
    if isinstance(value, list):
        return [x for item in value for x in _flat(item)]
    return [float(value)]


def verify_fleet(
    instances: list[Instance], samples: dict[str, Any], *, model: str, limits: Tolerances
) -> tuple[list[dict[str, Any]], list[str]]:
    """``verify_instance`` on every instance, over REST and over gRPC.

    Returns:
        (the outcome of each instance and protocol that answered, every failure: a wrong or slow answer, or an
        instance that did not answer).
    """
    report: list[dict[str, Any]] = []
    failures: list[str] = []
    for instance in instances:
        for protocol in ("rest", "grpc"):
            try:
                outcome = verify_instance(instance, protocol, samples, model=model, limits=limits)
            except InstanceError as error:
                failures.append(str(error))
                continue
            report.append(outcome)
            if outcome["failure"]:
                failures.append(outcome["failure"])
    return report, failures
