"""gRPC stubs of TF Serving's PredictionService and ModelService, for the vendored message classes.

They behave like ``tensorflow_serving.apis.*_pb2_grpc``'s stubs: each method is a ``grpc`` unary-unary callable
(``stub.Predict(request, timeout=5)``, ``stub.Predict.with_call(...)``, ``stub.Predict.future(...)``).
"""

from __future__ import annotations

from typing import Any

from pipeline_components.serving_protos.messages import message


def unary(channel: Any, path: str, response: str) -> Any:
    """A unary-unary callable of ``channel`` for a method path (``/tensorflow.serving.ModelService/GetModelStatus``).

    Args:
        channel: a ``grpc.Channel``.
        path: the method's full path.
        response: the full name of the response message, e.g. ``tensorflow.serving.GetModelStatusResponse``.
    """
    return channel.unary_unary(
        path,
        request_serializer=lambda value: value.SerializeToString(),
        response_deserializer=message(response).FromString,
    )


def _method(channel: Any, service: str, method: str, request: str, response: str) -> Any:
    del request  # listed beside the response for the reader; the channel needs only the response type
    return unary(channel, f"/tensorflow.serving.{service}/{method}", response)


class PredictionServiceStub:
    """``tensorflow.serving.PredictionService``: Predict, Classify, Regress, MultiInference, GetModelMetadata."""

    def __init__(self, channel: Any) -> None:
        prefix = "tensorflow.serving."
        for method, request, response in (
            ("Predict", "PredictRequest", "PredictResponse"),
            ("Classify", "ClassificationRequest", "ClassificationResponse"),
            ("Regress", "RegressionRequest", "RegressionResponse"),
            ("MultiInference", "MultiInferenceRequest", "MultiInferenceResponse"),
            ("GetModelMetadata", "GetModelMetadataRequest", "GetModelMetadataResponse"),
        ):
            setattr(self, method, _method(channel, "PredictionService", method, prefix + request, prefix + response))

    Predict: Any
    Classify: Any
    Regress: Any
    MultiInference: Any
    GetModelMetadata: Any


class ModelServiceStub:
    """``tensorflow.serving.ModelService``: GetModelStatus, HandleReloadConfigRequest."""

    def __init__(self, channel: Any) -> None:
        prefix = "tensorflow.serving."
        self.GetModelStatus = _method(
            channel,
            "ModelService",
            "GetModelStatus",
            prefix + "GetModelStatusRequest",
            prefix + "GetModelStatusResponse",
        )
        self.HandleReloadConfigRequest = _method(
            channel,
            "ModelService",
            "HandleReloadConfigRequest",
            prefix + "ReloadConfigRequest",
            prefix + "ReloadConfigResponse",
        )
