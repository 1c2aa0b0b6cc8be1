"""What the client's calls answer, and how each protocol's answer is read into it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from pipeline_components import serving_protos as sp
from pipeline_components.errors import InvalidRequestError

Protocol = Literal["rest", "grpc"]
PROTOCOLS: tuple[Protocol, ...] = ("rest", "grpc")
# One row of raw features (a dict), or a batch (a list of dicts).
Instances = Mapping[str, Any] | Sequence[Mapping[str, Any]]


class Choice(TypedDict, total=False):
    """Which version a call asks for, and how: the keyword arguments shared by predict, predict_examples, classify.

    Attributes:
        label: the version label (default: the client's, ``stable``); exclusive with ``version``.
        version: a version number to ask instead of a label.
        protocol: ``rest`` or ``grpc`` (default: the client's).
    """

    label: str | None
    version: int | None
    protocol: Protocol | None


@dataclass(frozen=True)
class Route:
    """Which model a request asks, and which of its versions: a version number, else a label, else the newest."""

    model: str
    label: str | None
    version: int | None


@dataclass(frozen=True, kw_only=True)
class Answer:
    """Who answered a request, and how it went.

    ``version`` is the version that computed it: from the gRPC response's ``model_spec``; for REST (whose predict
    answer does not say) only when the request named a version, or when ``resolve_version`` asked the server which
    version the label points at (a second request, which a load balancer may send to another instance).
    """

    model: str
    version: int | None
    label: str | None
    protocol: Protocol
    signature: str
    attempts: int
    latency_s: float


@dataclass(frozen=True, kw_only=True)
class Prediction(Answer):
    """Predict's answer: the predictions in TF Serving's row form (one entry per instance)."""

    predictions: list[Any]


@dataclass(frozen=True, kw_only=True)
class Classification(Answer):
    """Classify's answer: per example, a list of ``(class, score)`` pairs."""

    results: list[list[tuple[str, float]]]


@dataclass(frozen=True, kw_only=True)
class VersionStatus:
    """One version of a model as GetModelStatus reports it."""

    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: str = "OK"
    error_message: str = ""


def rows_of(instances: Instances) -> list[Mapping[str, Any]]:
    """One dict of features, or a list of them, as a non-empty list.

    Raises:
        InvalidRequestError: nothing to send.
    """
    rows = [instances] if isinstance(instances, Mapping) else list(instances)
    if not rows:
        raise InvalidRequestError("INVALID_ARGUMENT", "no instances to send: pass a dict of features or a list")
    return rows


def answered_version(response: Any, asked: int | None) -> int | None:
    """The version a gRPC response says answered (its ``model_spec``), else the one asked for."""
    return response.model_spec.version.value if response.model_spec.HasField("version") else asked


def classes_of_rest(document: Mapping[str, Any]) -> list[list[tuple[str, float]]]:
    """``:classify``'s ``results`` as ``(class, score)`` pairs."""
    return [[(str(cls), float(score)) for cls, score in result] for result in document.get("results", [])]


def classes_of_grpc(response: Any) -> list[list[tuple[str, float]]]:
    """A ``ClassificationResponse``'s classes as ``(class, score)`` pairs."""
    return [
        [(item.label, float(item.score)) for item in classifications.classes]
        for classifications in response.result.classifications
    ]


def statuses_of_rest(document: Mapping[str, Any]) -> list[VersionStatus]:
    """The ``model_version_status`` of a REST model-status answer."""
    return [
        VersionStatus(
            version=int(item["version"]),
            state=item["state"],
            error_code=item.get("status", {}).get("error_code", "OK"),
            error_message=item.get("status", {}).get("error_message", ""),
        )
        for item in document.get("model_version_status", [])
    ]


def statuses_of_grpc(response: Any) -> list[VersionStatus]:
    """The ``model_version_status`` of a ``GetModelStatusResponse``, enum values by name."""
    states = sp.message("tensorflow.serving.ModelVersionStatus").DESCRIPTOR.enum_types_by_name["State"]
    codes = sp.pool().FindEnumTypeByName("tensorflow.error.Code")
    return [
        VersionStatus(
            version=item.version,
            state=states.values_by_number[item.state].name,
            error_code=codes.values_by_number[item.status.error_code].name,
            error_message=item.status.error_message,
        )
        for item in response.model_version_status
    ]


def signature_inputs_of_rest(document: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Signature name -> input name -> dtype name, from a REST metadata answer."""
    signatures = document.get("metadata", {}).get("signature_def", {}).get("signature_def", {})
    return {name: {n: i["dtype"] for n, i in sig.get("inputs", {}).items()} for name, sig in signatures.items()}


def signature_inputs_of_grpc(response: Any) -> dict[str, dict[str, str]]:
    """Signature name -> input name -> dtype name, from a ``GetModelMetadataResponse``."""
    defs = sp.SignatureDefMap.FromString(response.metadata["signature_def"].value).signature_def
    dtype_names = sp.pool().FindEnumTypeByName("tensorflow.DataType")
    return {
        name: {n: dtype_names.values_by_number[i.dtype].name for n, i in sig.inputs.items()}
        for name, sig in defs.items()
    }
