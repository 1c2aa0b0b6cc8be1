"""Per-machine settings, read once from environment variables.

Everything physical (where data, artifacts, metadata and models live; which interpreter runs TFX) is decided
here and nowhere else. The defaults are the embedded, single-machine layout under ``var/`` in the checkout.

| variable                 | default                       | what                                        |
|--------------------------|-------------------------------|---------------------------------------------|
| ``RUNWAY_HOME``          | ``<checkout>/var``            | root of every default below                 |
| ``RUNWAY_DATA_DIR``      | ``$RUNWAY_HOME/data``         | prepared spans, one folder per dataset      |
| ``RUNWAY_PIPELINES_DIR`` | ``$RUNWAY_HOME/pipelines``    | TFX pipeline roots (artifacts)              |
| ``RUNWAY_METADATA_DIR``  | ``$RUNWAY_HOME/metadata``     | ML Metadata SQLite files, one per pipeline  |
| ``RUNWAY_IR_DIR``        | ``$RUNWAY_HOME/ir``           | compiled TFX IR, one JSON file per pipeline |
| ``RUNWAY_MODEL_STORE``   | ``$RUNWAY_HOME/models``       | TF Serving model base paths                 |
| ``RUNWAY_CONFIG_DIR``    | ``<checkout>/configs``        | pipeline configuration files                |
| ``RUNWAY_RUNTIME_PYTHON``| ``<checkout>/.venv-runtime/bin/python`` | interpreter of the runtime env    |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, kw_only=True)
class Settings:
    home: Path
    data_dir: Path
    pipelines_dir: Path
    metadata_dir: Path
    ir_dir: Path
    model_store: Path
    config_dir: Path
    runtime_python: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def path(name: str, default: Path) -> Path:
            value = env.get(name)
            return Path(value).expanduser().resolve() if value else default

        home = path("RUNWAY_HOME", CHECKOUT / "var")
        return cls(
            home=home,
            data_dir=path("RUNWAY_DATA_DIR", home / "data"),
            pipelines_dir=path("RUNWAY_PIPELINES_DIR", home / "pipelines"),
            metadata_dir=path("RUNWAY_METADATA_DIR", home / "metadata"),
            ir_dir=path("RUNWAY_IR_DIR", home / "ir"),
            model_store=path("RUNWAY_MODEL_STORE", home / "models"),
            config_dir=path("RUNWAY_CONFIG_DIR", CHECKOUT / "configs"),
            runtime_python=path("RUNWAY_RUNTIME_PYTHON", CHECKOUT / ".venv-runtime" / "bin" / "python"),
        )

    def as_env(self) -> dict[str, str]:
        """The settings as environment variables, for a process that must see the same layout."""
        return {
            "RUNWAY_HOME": str(self.home),
            "RUNWAY_DATA_DIR": str(self.data_dir),
            "RUNWAY_PIPELINES_DIR": str(self.pipelines_dir),
            "RUNWAY_METADATA_DIR": str(self.metadata_dir),
            "RUNWAY_IR_DIR": str(self.ir_dir),
            "RUNWAY_MODEL_STORE": str(self.model_store),
            "RUNWAY_CONFIG_DIR": str(self.config_dir),
            "RUNWAY_RUNTIME_PYTHON": str(self.runtime_python),
        }

    def pipeline_root(self, pipeline_name: str) -> Path:
        return self.pipelines_dir / pipeline_name

    def metadata_path(self, pipeline_name: str) -> Path:
        return self.metadata_dir / f"{pipeline_name}.sqlite"

    def ir_path(self, pipeline_name: str) -> Path:
        return self.ir_dir / f"{pipeline_name}.json"
