"""``runway``: the one command for everything a person does by hand.

It runs in the orchestrator environment (Airflow) and calls the pipeline runtime environment (TFX) as a
subprocess where TensorFlow is needed. The package is laid out by job:

- ``entry.py``: the entry point (parse, dispatch, turn errors into an exit status);
- ``parsers/``: the argument parsers and their help texts, one module per group of commands;
- ``commands/``: what each command does, one module per group, mirroring ``parsers/``;
- ``bridge.py``: the bridge to the runtime environment (a runtime command, cold or through the warm runtime);
- ``output.py``: printing (progress lines, the run summary).

Run ``runway --help`` or ``runway COMMAND --help``.
"""

from __future__ import annotations

from pipeline_components.cli.entry import main

__all__ = ["main"]
