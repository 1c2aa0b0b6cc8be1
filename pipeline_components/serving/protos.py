"""Conversions between tensorflow-serving-api's protos and the values ``inference`` works on.

Tensors and arrays go through the project's one encoder (``pipeline_components.serving_protos``), which works on
TensorFlow's own message classes as on its vendored ones; only the message types below come from TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import input_pb2, model_pb2

from pipeline_components.serving import status
from pipeline_components.serving.servable import Servable, SignatureDef
from pipeline_components.serving_protos import arrays
from pipeline_components.serving_protos.dtypes import EncodingError, type_name


def model_spec_choice(spec: model_pb2.ModelSpec) -> tuple[str, int | None, str | None]:
    """(name, version, label) of a ``ModelSpec``; version and label are exclusive (a oneof)."""
    choice = spec.WhichOneof("version_choice")
    version = spec.version.value if choice == "version" else None
    label = spec.version_label if choice == "version_label" else None
    return spec.name, version, label


def fill_model_spec(spec: model_pb2.ModelSpec, servable: Servable, signature_name: str | None) -> None:
    """The ``model_spec`` of a response: the name, the version that answered, the signature that ran."""
    spec.name = servable.name
    spec.version.value = servable.version
    if signature_name is not None:
        spec.signature_name = signature_name


def tensor_to_array(name: str, proto: tensor_pb2.TensorProto, signature: SignatureDef) -> np.ndarray:
    """A request's TensorProto as an array, checked against the signature's dtype.

    Raises:
        ServingError: INVALID_ARGUMENT for a malformed tensor or a dtype other than the signature's.
    """
    expected = signature.inputs[name].dtype if name in signature.inputs else proto.dtype
    if proto.dtype != expected:
        raise status.invalid_argument(
            f"Expects arg[{sorted(signature.inputs).index(name)}] to be {type_name(expected)} but "
            f"{type_name(proto.dtype)} is provided"
        )
    try:
        return arrays.tensor_to_array(proto)
    except EncodingError as error:
        raise status.invalid_argument(f"input {name} is not a valid tensor: {error}") from None


def array_to_tensor(array: np.ndarray) -> tensor_pb2.TensorProto:
    """An output array as a TensorProto (as ``tf.make_tensor_proto`` writes it)."""
    return arrays.array_to_tensor(array, into=tensor_pb2.TensorProto())


def serialized_examples(model_input: input_pb2.Input) -> list[bytes]:
    """The serialized tf.Examples of a Classify/Regress ``Input``, each merged with the context if any.

    Concatenating serialized messages merges them (protobuf), which is how TF Serving applies the context
    (``InputToSerializedExampleTensor``).

    Raises:
        ServingError: INVALID_ARGUMENT for an empty input.
    """
    kind = model_input.WhichOneof("kind")
    if kind == "example_list":
        examples = [example.SerializeToString() for example in model_input.example_list.examples]
    elif kind == "example_list_with_context":
        context = model_input.example_list_with_context.context.SerializeToString()
        examples = [context + example.SerializeToString() for example in model_input.example_list_with_context.examples]
    else:
        examples = []
    if not examples:
        raise status.invalid_argument("Input is empty.")
    return examples


def arrays_from_inputs(inputs: Mapping[str, tensor_pb2.TensorProto], signature: SignatureDef) -> dict[str, np.ndarray]:
    """Every input of a PredictRequest as arrays (see ``tensor_to_array``)."""
    return {name: tensor_to_array(name, proto, signature) for name, proto in inputs.items()}
