"""Conformance suite: TF Serving's documented behaviour, checked against a model server binary.

Which server: ``RUNWAY_MODEL_SERVER_BIN`` names a binary (for example ``tensorflow_model_server``); without it the
suite runs against runway's server (``scripts/runway-model-server``) and, when ``tensorflow_model_server`` is on
PATH, against that too. Which model: ``RUNWAY_CONFORMANCE_MODEL_BASE`` names a model base path (or one version
folder) exported by this project's pipeline; without it the suite runs the penguins pipeline once (about 4 minutes)
into a temporary RUNWAY_HOME.

Runs in the pipeline runtime environment: ``.venv-runtime/bin/python -m pytest tests/conformance``.
"""

from __future__ import annotations

import importlib.util

collect_ignore_glob: list[str] = []
if importlib.util.find_spec("tensorflow_serving") is None or importlib.util.find_spec("grpc") is None:
    # The orchestrator environment has neither: these tests belong to the runtime environment.
    collect_ignore_glob = ["test_*.py"]
else:
    from tests.conformance.fixtures import *  # noqa: F403 (pytest fixtures)
