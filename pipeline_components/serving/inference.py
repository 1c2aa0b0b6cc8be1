"""Predict, Classify and Regress on a loaded version, shared by the REST and gRPC APIs.

Checks and messages follow tensorflow_serving/servables/tensorflow/predict_util.cc, classifier.cc and
regressor.cc, so both APIs fail the same way TF Serving's do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from pipeline_components.errors import ServingError
from pipeline_components.serving import status
from pipeline_components.serving.servable import DEFAULT_SIGNATURE, Servable, SignatureDef

CLASSIFY_INPUTS = "inputs"
CLASSIFY_CLASSES = "classes"
CLASSIFY_SCORES = "scores"
REGRESS_INPUTS = "inputs"
REGRESS_OUTPUTS = "outputs"


@dataclass(frozen=True)
class Result:
    """What a request ran on, and its outputs.

    Attributes:
        servable: the version that answered.
        signature_name: the signature that ran.
        outputs: output alias -> value (predict).
        classes: per example, (label, score) per class (classify).
        values: per example, the regression value (regress).
    """

    servable: Servable
    signature_name: str
    outputs: Mapping[str, np.ndarray] | None = None
    classes: list[list[tuple[str, float]]] | None = None
    values: list[float] | None = None


F = TypeVar("F", bound=Callable[..., Any])


def _served(api: str) -> Callable[[F], F]:
    """A failure of ``api`` on a version names that version (``ServingError.served``), as its success would: the
    per-version metrics count it against the version that failed (the canary analysis compares them)."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def run(servable: Servable, *args: Any, **kwargs: Any) -> Any:
            try:
                return function(servable, *args, **kwargs)
            except ServingError as error:
                error.served = error.served or (servable.name, api, servable.version)
                raise

        return run  # type: ignore[return-value]

    return decorate


def signature_or_error(servable: Servable, signature_name: str) -> tuple[str, SignatureDef]:
    """The named signature for Predict, or FAILED_PRECONDITION as ``RunPredict`` answers."""
    name = signature_name or DEFAULT_SIGNATURE
    signature = servable.signature_defs.get(name)
    if signature is None:
        raise status.failed_precondition(f'Serving signature key "{name}" not found.')
    return name, signature


@_served("predict")
def predict(
    servable: Servable, signature_name: str, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str] = ()
) -> Result:
    """Run a Predict request.

    Args:
        servable: the version to run.
        signature_name: the signature (empty: ``serving_default``).
        inputs: input alias -> value.
        output_filter: output aliases to return (empty: all).

    Raises:
        ServingError: FAILED_PRECONDITION for an unknown signature, INVALID_ARGUMENT for inputs or outputs that do
            not match it, or the code of a failure while running.
    """
    name, signature = signature_or_error(servable, signature_name)
    sent, expected = set(inputs), set(signature.inputs)
    if len(sent) > len(expected) or (len(sent) < len(expected) and not signature.defaults):
        raise status.invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(expected)} len({{{','.join(sorted(sent))}}}) "
            f"!= len({{{','.join(sorted(expected))}}}). Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}."
        )
    for alias in sorted(sent - expected):
        raise status.invalid_argument(
            f"input tensor alias not found in signature: {alias}. Inputs expected to be in the set "
            f"{{{','.join(sorted(expected))}}}."
        )
    seen: list[str] = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise status.invalid_argument(
                f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                f"{{{','.join(sorted(signature.outputs))}}}."
            )
        if alias in seen:
            raise status.invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    outputs = servable.run(name, inputs, seen or None)
    return Result(servable=servable, signature_name=name, outputs=outputs)


def _tf_example_signature(
    servable: Servable, signature_name: str, input_key: str, output_keys: tuple[str, ...], kind: str
) -> tuple[str, SignatureDef]:
    name = signature_name or DEFAULT_SIGNATURE
    signature = servable.signature_defs.get(name)
    if signature is None:
        raise status.invalid_argument(f"No signature was found with the name: {name}")
    if len(signature.inputs) != 1:
        raise status.invalid_argument("Expected one input Tensor.")
    if kind == "classification" and len(signature.outputs) not in (1, 2):
        raise status.invalid_argument(f"Expected one or two output Tensors, found {len(signature.outputs)}")
    if kind == "regression" and len(signature.outputs) != 1:
        raise status.invalid_argument("Expected one output Tensor.")
    if input_key not in signature.inputs:
        raise status.invalid_argument(f"No {kind} inputs found in SignatureDef: {signature}")
    if not any(key in signature.outputs for key in output_keys):
        if kind == "classification":
            raise status.invalid_argument(
                'Expected classification signature outputs to contain at least one of "classes" or "scores". '
                f"Signature was: {signature}"
            )
        raise status.invalid_argument(f"No regression outputs found in SignatureDef: {signature}")
    return name, signature


def _serialized(examples: Sequence[bytes]) -> np.ndarray:
    if not examples:
        raise status.invalid_argument("Input is empty.")
    array = np.empty(len(examples), dtype=object)
    array[:] = list(examples)
    return array


@_served("classify")
def classify(servable: Servable, signature_name: str, examples: Sequence[bytes]) -> Result:
    """Run a Classify request over serialized tf.Examples (``RunClassify``).

    Raises:
        ServingError: INVALID_ARGUMENT when the signature is not a classification one or its outputs are not
            shaped [batch, num_classes], or the code of a failure while running.
    """
    name, signature = _tf_example_signature(
        servable, signature_name, CLASSIFY_INPUTS, (CLASSIFY_CLASSES, CLASSIFY_SCORES), "classification"
    )
    keys = [key for key in (CLASSIFY_CLASSES, CLASSIFY_SCORES) if key in signature.outputs]
    outputs = servable.run(name, {CLASSIFY_INPUTS: _serialized(examples)}, keys)
    count = len(examples)
    classes, scores = outputs.get(CLASSIFY_CLASSES), outputs.get(CLASSIFY_SCORES)
    for what, tensor in (("classes", classes), ("scores", scores)):
        if tensor is None:
            continue
        if tensor.ndim != 2:
            raise status.invalid_argument(
                f"Expected Tensor shape: [batch_size num_classes] but got {list(tensor.shape)}"
            )
        if tensor.shape[0] != count:
            raise status.invalid_argument(f"Expected {what} output batch size of {count}. Got: {tensor.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise status.invalid_argument(
            f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    if scores is not None and scores.dtype != np.float32:
        raise status.invalid_argument(f"Expected scores Tensor of DT_FLOAT. Got: {scores.dtype}")
    width = (classes if classes is not None else scores).shape[1]  # type: ignore[union-attr]
    result = []
    for i in range(count):
        row = []
        for c in range(width):
            label = classes[i, c] if classes is not None else b""
            text = label.decode("utf-8", errors="replace") if isinstance(label, bytes) else str(label)
            row.append((text, float(scores[i, c]) if scores is not None else 0.0))
        result.append(row)
    return Result(servable=servable, signature_name=name, classes=result)


@_served("regress")
def regress(servable: Servable, signature_name: str, examples: Sequence[bytes]) -> Result:
    """Run a Regress request over serialized tf.Examples (``RunRegress``).

    Raises:
        ServingError: INVALID_ARGUMENT when the signature is not a regression one or its output is not shaped
            [batch] or [batch, 1], or the code of a failure while running.
    """
    name, _ = _tf_example_signature(servable, signature_name, REGRESS_INPUTS, (REGRESS_OUTPUTS,), "regression")
    output = servable.run(name, {REGRESS_INPUTS: _serialized(examples)}, [REGRESS_OUTPUTS])[REGRESS_OUTPUTS]
    if not (output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1)):
        raise status.invalid_argument(
            f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got {list(output.shape)}"
        )
    if output.shape[0] != len(examples):
        raise status.invalid_argument(
            f"Input batch size did not match output batch size: {len(examples)} vs. {output.shape[0]}"
        )
    if output.dtype != np.float32:
        raise status.invalid_argument(f"Expected output Tensor of DT_FLOAT.  Got: {output.dtype}")
    return Result(servable=servable, signature_name=name, values=[float(str(v)) for v in output.reshape(-1)])
