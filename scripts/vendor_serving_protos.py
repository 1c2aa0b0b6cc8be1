"""Regenerate ``pipeline_components/serving_protos/tf_serving.binpb`` from tensorflow-serving-api.

Run in the pipeline runtime environment, on purpose, when the TF Serving API changes:

    .venv-runtime/bin/python scripts/vendor_serving_protos.py

It collects the descriptors of TF Serving's gRPC APIs (PredictionService, ModelService) and of every file they
import (TensorFlow's tensor, example and meta-graph protos, TF Serving's config protos, protobuf's well-known types)
from the generated modules of ``tensorflow-serving-api`` and writes them as one serialized ``FileDescriptorSet``.
``pipeline_components.serving_protos`` builds message classes from that file with whatever protobuf runtime is
installed, so neither TensorFlow, tensorflow-serving-api nor ``protoc``/``grpcio-tools`` is needed to use it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool

from pipeline_components.durable import atomic_write

# The message modules of both services. The service modules themselves (prediction_service_pb2,
# model_service_pb2) are generated in an older style that protobuf 6 refuses to import; the stubs in
# ``serving_protos/stubs.py`` need only the method paths, so the service descriptors are not vendored.
ROOTS = (
    "tensorflow_serving.apis.predict_pb2",
    "tensorflow_serving.apis.classification_pb2",
    "tensorflow_serving.apis.regression_pb2",
    "tensorflow_serving.apis.inference_pb2",
    "tensorflow_serving.apis.get_model_metadata_pb2",
    "tensorflow_serving.apis.get_model_status_pb2",
    "tensorflow_serving.apis.model_management_pb2",
    "tensorflow_serving.apis.prediction_log_pb2",
    "tensorflow_serving.config.model_server_config_pb2",
)
TARGET = Path(__file__).resolve().parent.parent / "pipeline_components" / "serving_protos" / "tf_serving.binpb"


def main() -> int:
    import importlib

    pool = descriptor_pool.Default()
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        file = pool.FindFileByName(name)
        for dependency in file.dependencies:
            visit(dependency.name)
        ordered.append(name)  # dependencies first: the pool needs them before the file that imports them

    for module_name in ROOTS:
        module = importlib.import_module(module_name)
        visit(module.DESCRIPTOR.name)

    files = descriptor_pb2.FileDescriptorSet()
    for name in ordered:
        pool.FindFileByName(name).CopyToProto(files.file.add())
    atomic_write(TARGET, files.SerializeToString(deterministic=True))
    print(f"wrote {TARGET} ({len(ordered)} files, {TARGET.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
