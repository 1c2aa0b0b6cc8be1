"""One loaded model version: its SavedModel, its signature defs, and running a signature.

The signature defs come from ``saved_model.pb`` itself (what TF Serving reports as metadata); the functions run
through ``tf.saved_model.load``. Both are read once, at load.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from pipeline_components.errors import ServingError
from pipeline_components.serving import status

SignatureDef: TypeAlias = meta_graph_pb2.SignatureDef
DEFAULT_SIGNATURE = "serving_default"  # kDefaultServingSignatureDefKey
SERVE_TAG = "serve"


def _op_error_code(error: tf.errors.OpError) -> str:
    return status.CODE_NAMES.get(int(error.error_code), status.UNKNOWN)


def read_signature_defs(path: Path) -> dict[str, SignatureDef]:
    """The signature defs of the ``serve`` meta graph of a SavedModel directory.

    Raises:
        ServingError: NOT_FOUND without ``saved_model.pb``, DATA_LOSS when it does not parse.
    """
    pb = path / "saved_model.pb"
    try:
        data = pb.read_bytes()
    except OSError as error:
        raise status.not_found(
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path} ({error})"
        ) from None
    model = saved_model_pb2.SavedModel()
    try:
        model.ParseFromString(data)
    except Exception as error:
        raise ServingError(status.DATA_LOSS, f"{pb} is not a SavedModel: {error}") from None
    for meta_graph in model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise status.not_found(f"SavedModel at {path} has no MetaGraphDef with the tag set {{{SERVE_TAG}}}")


def _check_shape(alias: str, shape: tuple[int, ...], expected: Any) -> None:
    """Refuse an input whose shape the signature's placeholder cannot take, as a TF session refuses the feed."""
    if expected.unknown_rank:
        return
    dims = [dim.size for dim in expected.dim]
    if len(dims) != len(shape) or any(want not in (-1, got) for want, got in zip(dims, shape, strict=True)):
        raise status.invalid_argument(
            f"input {alias} has shape {list(shape)}, which is incompatible with the signature's shape {dims}"
        )


class Servable:
    """A model version ready to run.

    Attributes:
        name: the model's name.
        version: the version number (its directory name).
        path: the version's directory.
        signature_defs: signature name -> ``SignatureDef`` proto, as in ``saved_model.pb``.
    """

    def __init__(self, *, name: str, version: int, path: Path, signature_defs: dict[str, SignatureDef], loaded: Any):
        self.name = name
        self.version = version
        self.path = path
        self.signature_defs = signature_defs
        self._loaded = loaded

    @classmethod
    def load(cls, *, name: str, version: int, path: Path) -> Servable:
        """Load a SavedModel version directory.

        Raises:
            ServingError: the directory is not a loadable SavedModel (the code says why).
        """
        signature_defs = read_signature_defs(path)
        try:
            loaded = tf.saved_model.load(str(path), tags=[SERVE_TAG])
        except tf.errors.OpError as error:
            raise ServingError(_op_error_code(error), f"Failed to load SavedModel {path}: {error.message}") from None
        except Exception as error:
            raise ServingError(status.UNKNOWN, f"Failed to load SavedModel {path}: {error}") from None
        return cls(name=name, version=version, path=path, signature_defs=signature_defs, loaded=loaded)

    def signature(self, name: str) -> SignatureDef | None:
        """The signature def called ``name`` (empty means ``serving_default``), or None."""
        return self.signature_defs.get(name or DEFAULT_SIGNATURE)

    def run(
        self, signature_name: str, inputs: Mapping[str, np.ndarray], output_keys: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run one signature.

        Args:
            signature_name: the signature's key (already resolved; not empty).
            inputs: input alias -> value, with the signature's dtypes.
            output_keys: output aliases to return (all when None).

        Returns:
            Output alias -> value.

        Raises:
            ServingError: INVALID_ARGUMENT for inputs the graph rejects (shape, type), or the TensorFlow error's
                code for a failure while running.
        """
        signature = self.signature_defs[signature_name]
        function = self._loaded.signatures[signature_name]
        tensors = {}
        for alias, value in inputs.items():
            _check_shape(alias, np.shape(value), signature.inputs[alias].tensor_shape)
            dtype = tf.dtypes.as_dtype(signature.inputs[alias].dtype)
            try:
                tensors[alias] = tf.convert_to_tensor(value, dtype=dtype)
            except (TypeError, ValueError) as error:
                raise status.invalid_argument(f"input {alias}: cannot make a {dtype.name} tensor: {error}") from None
        try:
            outputs = function(**tensors)
        except tf.errors.OpError as error:
            raise ServingError(_op_error_code(error), error.message) from None
        except (TypeError, ValueError) as error:
            raise status.invalid_argument(str(error)) from None
        keys = output_keys if output_keys is not None else list(outputs)
        return {key: outputs[key].numpy() for key in keys}
