"""A TensorFlow Serving-compatible model server for machines where ``tensorflow_model_server`` cannot run.

Same flags, REST API, gRPC services and lifecycle semantics as TF Serving for what it implements (see
docs/serving.md); ``tests/conformance`` checks it, and runs against the real binary where one is installed.
Runs in the pipeline runtime environment: ``python -m pipeline_components.serving --flag=value ...``.

Nothing is imported here: importing TensorFlow is the server's business, not the package's.
"""
