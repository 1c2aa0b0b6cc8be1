from __future__ import annotations

from pathlib import Path

from pipeline_components.settings import CHECKOUT, Settings


def test_defaults_live_under_var_in_the_checkout() -> None:
    settings = Settings.from_env({})
    assert settings.home == CHECKOUT / "var"
    assert settings.metadata_path("flights") == CHECKOUT / "var" / "metadata" / "flights.sqlite"
    assert settings.runtime_python == CHECKOUT / ".venv-runtime" / "bin" / "python"


def test_home_moves_everything_and_specific_variables_win(tmp_path: Path) -> None:
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path), "RUNWAY_MODEL_STORE": str(tmp_path / "store")})
    assert settings.data_dir == tmp_path / "data"
    assert settings.model_store == tmp_path / "store"
    assert Settings.from_env(settings.as_env()) == settings
