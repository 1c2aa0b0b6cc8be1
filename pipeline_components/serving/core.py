"""The serving APIs on tensorflow-serving-api's request and response protos, shared by gRPC and REST."""

from __future__ import annotations

from typing import Any

from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    predict_pb2,
    regression_pb2,
    status_pb2,
)

from pipeline_components.errors import ServingError
from pipeline_components.serving import inference, status
from pipeline_components.serving.manager import ModelManager
from pipeline_components.serving.protos import (
    array_to_tensor,
    arrays_from_inputs,
    fill_model_spec,
    model_spec_choice,
    serialized_examples,
)
from pipeline_components.serving.request_log import RequestLogger
from pipeline_components.serving.servable import Servable

SIGNATURE_DEF_FIELD = "signature_def"  # GetModelMetadataImpl::kSignatureDef


def predict_response(result: inference.Result) -> predict_pb2.PredictResponse:
    """A Predict's answer as a ``PredictResponse``: the version and signature that ran, the outputs."""
    response = predict_pb2.PredictResponse()
    fill_model_spec(response.model_spec, result.servable, result.signature_name)
    for alias, value in (result.outputs or {}).items():
        response.outputs[alias].CopyFrom(array_to_tensor(value))
    return response


def classification_response(result: inference.Result) -> classification_pb2.ClassificationResponse:
    """A Classify's answer as a ``ClassificationResponse``."""
    response = classification_pb2.ClassificationResponse()
    fill_model_spec(response.model_spec, result.servable, result.signature_name)
    for row in result.classes or []:
        classifications = response.result.classifications.add()
        for label, score in row:
            classifications.classes.add(label=label, score=score)
    return response


def regression_response(result: inference.Result) -> regression_pb2.RegressionResponse:
    """A Regress's answer as a ``RegressionResponse``."""
    response = regression_pb2.RegressionResponse()
    fill_model_spec(response.model_spec, result.servable, result.signature_name)
    for value in result.values or []:
        response.result.regressions.add(value=value)
    return response


class ServingCore:
    """PredictionService and ModelService semantics over a ``ModelManager``.

    Args:
        manager: the models and their versions.
        request_log: where answered Predict, Classify and Regress requests are offered for logging (both APIs).
    """

    def __init__(self, manager: ModelManager, request_log: RequestLogger | None = None) -> None:
        self.manager = manager
        self.request_log = request_log

    def log_request(self, api: str, servable: Servable, signature_name: str, request: Any, response: Any) -> None:
        """Offer an answered request to the request log (sampled there; never blocks)."""
        if self.request_log is not None:
            self.request_log.log(
                api=api, servable=servable, signature_name=signature_name, build=lambda: (request, response)
            )

    def servable(self, spec_name: str, version: int | None, label: str | None) -> Servable:
        """The version a request names (see ``ModelManager.servable``)."""
        return self.manager.servable(spec_name, version=version, label=label)

    def get_model_status(
        self, request: get_model_status_pb2.GetModelStatusRequest
    ) -> get_model_status_pb2.GetModelStatusResponse:
        """``ModelService.GetModelStatus`` (``GetModelStatusImpl``).

        Raises:
            ServingError: INVALID_ARGUMENT without a model spec; NOT_FOUND for an unknown model or version.
        """
        if not request.HasField("model_spec"):
            raise status.invalid_argument("Missing ModelSpec")
        name, version, label = model_spec_choice(request.model_spec)
        if label is not None:
            # GetModelStatusImpl ignores labels and reports every version of the model.
            version = None
        response = get_model_status_pb2.GetModelStatusResponse()
        for number, state in self.manager.version_states(name, version):
            entry = response.model_version_status.add()
            entry.version = number
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(state.state)
            entry.status.error_code = status.CODE_NUMBERS.get(state.error_code, 2)
            entry.status.error_message = state.error_message
        return response

    def get_model_metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """``PredictionService.GetModelMetadata`` (``GetModelMetadataImpl``): the signature defs.

        Raises:
            ServingError: INVALID_ARGUMENT without a model spec or a supported metadata field; NOT_FOUND for a
                model or version that is not available.
        """
        if not request.HasField("model_spec"):
            raise status.invalid_argument("Missing ModelSpec")
        if not request.metadata_field:
            raise status.invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise status.invalid_argument(f"Metadata field {field} is not supported")
        servable = self.servable(*model_spec_choice(request.model_spec))
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        fill_model_spec(response.model_spec, servable, None)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response

    def predict(self, request: predict_pb2.PredictRequest) -> tuple[predict_pb2.PredictResponse, Servable]:
        """``PredictionService.Predict``.

        Raises:
            ServingError: see ``inference.predict`` and ``ModelManager.servable``.
        """
        servable = self.servable(*model_spec_choice(request.model_spec))
        name, signature = inference.signature_or_error(servable, request.model_spec.signature_name)
        result = inference.predict(
            servable, name, arrays_from_inputs(request.inputs, signature), list(request.output_filter)
        )
        response = predict_response(result)
        self.log_request("predict", servable, result.signature_name, request, response)
        return response, servable

    def classify(
        self, request: classification_pb2.ClassificationRequest
    ) -> tuple[classification_pb2.ClassificationResponse, Servable]:
        """``PredictionService.Classify``."""
        servable = self.servable(*model_spec_choice(request.model_spec))
        result = inference.classify(servable, request.model_spec.signature_name, serialized_examples(request.input))
        response = classification_response(result)
        self.log_request("classify", servable, result.signature_name, request, response)
        return response, servable

    def regress(self, request: regression_pb2.RegressionRequest) -> tuple[regression_pb2.RegressionResponse, Servable]:
        """``PredictionService.Regress``."""
        servable = self.servable(*model_spec_choice(request.model_spec))
        result = inference.regress(servable, request.model_spec.signature_name, serialized_examples(request.input))
        response = regression_response(result)
        self.log_request("regress", servable, result.signature_name, request, response)
        return response, servable

    def reload_config(
        self, request: model_management_pb2.ReloadConfigRequest
    ) -> tuple[model_management_pb2.ReloadConfigResponse, ServingError | None]:
        """``ModelService.HandleReloadConfigRequest``: the response carries the status, and so does the RPC."""
        response = model_management_pb2.ReloadConfigResponse()
        error: ServingError | None = None
        try:
            self.manager.reload_config(request.config)
        except ServingError as failure:
            error = failure
        response.status.CopyFrom(
            status_pb2.StatusProto(
                error_code=status.CODE_NUMBERS[error.code] if error else 0,
                error_message=error.message if error else "",
            )
        )
        return response, error
