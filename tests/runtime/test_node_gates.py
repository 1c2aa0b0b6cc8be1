"""Gates that act before TFX's launcher: a missing span is refused, a dry run never reaches the Pusher."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_components.config import load_pipeline_config
from pipeline_components.runtime.compile import compile_pipeline, write_ir
from pipeline_components.runtime.node import GateFailed, NodeSkipped, run_node
from pipeline_components.settings import Settings
from tests.conftest import CONFIGS


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path_factory.mktemp("home"))})
    config = load_pipeline_config(CONFIGS / "flights.yaml")
    path = settings.ir_path("flights")
    write_ir(compile_pipeline(config, settings), path, config_path=config.source)
    return settings, path


def test_dry_run_skips_the_pusher_before_anything_runs(compiled: tuple[Settings, Path]) -> None:
    settings, ir = compiled
    with pytest.raises(NodeSkipped, match="dry run"):
        run_node(ir, "Pusher", "run-1", {"dry_run": True})
    assert not settings.metadata_path("flights").exists()  # nothing was recorded, nothing pushed
    assert not (settings.model_store / "flights_delay").exists()


@pytest.mark.parametrize("params", [pytest.param({}, id="newest"), pytest.param({"span": 5}, id="pinned")])
def test_missing_span_is_a_gate_not_a_crash(compiled: tuple[Settings, Path], params: dict[str, int]) -> None:
    settings, ir = compiled
    (settings.data_dir / "flights" / "span-2013-01").mkdir(parents=True, exist_ok=True)  # folder, no CSV
    with pytest.raises(GateFailed, match="no input files match"):
        run_node(ir, "CsvExampleGen", "run-1", params)


def test_a_custom_components_verdict_round_trips_through_its_artifact(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from pipeline_components.components.gate import read_gate, write_gate
    from pipeline_components.runtime.node_figures import node_figures

    artifact = SimpleNamespace(uri=str(tmp_path / "result"))
    write_gate(
        artifact.uri,
        passed=False,
        summary="2 expectations failed",
        failures=["carrier: unexpected value 'ZZ' (allowed: AA, B6, ...)", "rows: 0 (expected at least 1,000)"],
        report="/reports/x.html",
        figures={"evaluated": 40},
    )
    verdict = read_gate({"result": [artifact]})
    assert verdict["gate_passed"] is False
    assert verdict["gate_failures"][0].startswith("carrier")
    assert verdict["report"] == "/reports/x.html" and verdict["evaluated"] == 40
    assert node_figures("GreatExpectationsValidator", {"result": [artifact]}) == verdict
    assert read_gate({"result": [SimpleNamespace(uri=str(tmp_path / "none"))]}) == {}


def test_local_beam_runners_do_not_repackage_tfx_before_each_node(monkeypatch: pytest.MonkeyPatch) -> None:
    from tfx.proto.orchestration import executable_spec_pb2
    from tfx.utils import dependency_utils

    from pipeline_components.runtime.node import _local_beam_without_packaging

    def build_sdist(args: list[str]) -> list[str]:
        return [*args, "--extra_package=/tmp/tfx_ephemeral.tar.gz"]

    remote = executable_spec_pb2.BeamExecutableSpec(beam_pipeline_args=["--runner=DataflowRunner"])
    monkeypatch.setattr(dependency_utils, "make_beam_dependency_flags", build_sdist)
    _local_beam_without_packaging(remote)
    assert dependency_utils.make_beam_dependency_flags(["--runner=DataflowRunner"])[-1].startswith("--extra_package")

    local = executable_spec_pb2.BeamExecutableSpec(beam_pipeline_args=["--runner=FnApiRunner"])
    _local_beam_without_packaging(local)
    assert dependency_utils.make_beam_dependency_flags(["--runner=FnApiRunner"]) == ["--runner=FnApiRunner"]
