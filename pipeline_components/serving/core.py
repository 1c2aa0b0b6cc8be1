"""The serving APIs on tensorflow-serving-api's request and response protos, shared by gRPC and REST."""

from __future__ import annotations

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
from pipeline_components.serving.servable import Servable

SIGNATURE_DEF_FIELD = "signature_def"  # GetModelMetadataImpl::kSignatureDef


class ServingCore:
    """PredictionService and ModelService semantics over a ``ModelManager``.

    Args:
        manager: the models and their versions.
    """

    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager

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
        response = predict_pb2.PredictResponse()
        fill_model_spec(response.model_spec, servable, result.signature_name)
        for alias, value in (result.outputs or {}).items():
            response.outputs[alias].CopyFrom(array_to_tensor(value))
        return response, servable

    def classify(
        self, request: classification_pb2.ClassificationRequest
    ) -> tuple[classification_pb2.ClassificationResponse, Servable]:
        """``PredictionService.Classify``."""
        servable = self.servable(*model_spec_choice(request.model_spec))
        result = inference.classify(servable, request.model_spec.signature_name, serialized_examples(request.input))
        response = classification_pb2.ClassificationResponse()
        fill_model_spec(response.model_spec, servable, result.signature_name)
        for row in result.classes or []:
            classifications = response.result.classifications.add()
            for label, score in row:
                classifications.classes.add(label=label, score=score)
        return response, servable

    def regress(self, request: regression_pb2.RegressionRequest) -> tuple[regression_pb2.RegressionResponse, Servable]:
        """``PredictionService.Regress``."""
        servable = self.servable(*model_spec_choice(request.model_spec))
        result = inference.regress(servable, request.model_spec.signature_name, serialized_examples(request.input))
        response = regression_pb2.RegressionResponse()
        fill_model_spec(response.model_spec, servable, result.signature_name)
        for value in result.values or []:
            response.result.regressions.add(value=value)
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
