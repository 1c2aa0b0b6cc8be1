"""Fixtures of the conformance suite: the server binary, a real exported model, running servers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.harness import ServerProcess, make_base_path
from tests.helpers import missing

CHECKOUT = Path(__file__).resolve().parents[2]
OURS = str(CHECKOUT / "scripts" / "runway-model-server")
MODEL_NAME = "penguins"


def _targets() -> list[pytest.param]:
    chosen = os.environ.get("RUNWAY_MODEL_SERVER_BIN")
    if chosen:
        return [pytest.param(chosen, id=Path(chosen).name)]
    targets = [pytest.param(OURS, id="runway")]
    real = shutil.which("tensorflow_model_server")
    if real:
        targets.append(pytest.param(real, id="tensorflow_model_server"))
    return targets


@pytest.fixture(scope="session", params=_targets())
def server_bin(request: pytest.FixtureRequest) -> str:
    """The model server binary under test."""
    return str(request.param)


@pytest.fixture(scope="session")
def is_runway(server_bin: str) -> bool:
    """Whether the binary is runway's server (for the checks of this server's own additions)."""
    return Path(server_bin).resolve() == Path(OURS).resolve()


@pytest.fixture(scope="session")
def exported_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One version folder of a SavedModel exported and pushed by this project's pipeline."""
    given = os.environ.get("RUNWAY_CONFORMANCE_MODEL_BASE")
    if given:
        path = Path(given)
        if (path / "saved_model.pb").exists():
            return path
        versions = sorted((p for p in path.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        if not versions:
            raise pytest.UsageError(f"RUNWAY_CONFORMANCE_MODEL_BASE={given} holds no version folders")
        return versions[-1]
    home = tmp_path_factory.mktemp("runway_home")
    runway = CHECKOUT / ".venv" / "bin" / "runway"
    if not runway.exists():
        missing("no orchestrator environment (.venv) to run the pipeline; set RUNWAY_CONFORMANCE_MODEL_BASE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNWAY_")} | {"RUNWAY_HOME": str(home)}
    result = subprocess.run(
        [str(runway), "run", "penguins", "--set", "model.train_steps=100"],
        cwd=CHECKOUT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-5000:] + result.stderr[-5000:])
        raise RuntimeError("the penguins pipeline failed; see its output above")
    store = home / "models" / "penguins_species"
    return max((p for p in store.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


@pytest.fixture(scope="session")
def shared_base(exported_version: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A base path with versions 1 and 2, both copies of the exported model."""
    return make_base_path(tmp_path_factory.mktemp("shared") / MODEL_NAME, exported_version, {1: "good", 2: "good"})


@pytest.fixture(scope="session")
def shared_server(
    server_bin: str, shared_base: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server for the API tests: versions 1 and 2, labels stable=1 and canary=2, Prometheus on."""
    folder = tmp_path_factory.mktemp("shared_server")
    config = folder / "models.config"
    config.write_text(
        f"""model_config_list {{
  config {{
    name: "{MODEL_NAME}"
    base_path: "{shared_base}"
    model_platform: "tensorflow"
    model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
    version_labels {{ key: "stable" value: 1 }}
    version_labels {{ key: "canary" value: 2 }}
  }}
}}
"""
    )
    monitoring = folder / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n')
    server = ServerProcess(
        server_bin,
        folder,
        [
            f"--model_config_file={config}",
            f"--monitoring_config_file={monitoring}",
            "--allow_version_labels_for_unavailable_models=true",
            "--file_system_poll_wait_seconds=1",
        ],
    )
    server.start()
    server.wait_available(MODEL_NAME, versions={1, 2})
    yield server
    server.stop()


def _global_ipv4(ip: str) -> str | None:
    result = subprocess.run([ip, "-j", "-4", "addr", "show", "scope", "global"], capture_output=True, text=True)
    if result.returncode != 0:
        return None
    for link in json.loads(result.stdout or "[]"):
        for address in link.get("addr_info", []):
            if address.get("local"):
                return str(address["local"])
    return None


@pytest.fixture(scope="session")
def outside_address() -> Iterator[str]:
    """An IPv4 address of this machine that is not loopback: one it has, or (as root) one made for the tests.

    The made one sits on a veth pair (TEST-NET-2, RFC 5737, which routes nowhere) and is deleted afterwards.
    """
    ip = shutil.which("ip") or ("/usr/sbin/ip" if Path("/usr/sbin/ip").is_file() else None)
    if ip is None:
        missing("the ip command (iproute2) is not installed: cannot find a non-loopback address")
    assert ip is not None
    found = _global_ipv4(ip)
    if found:
        yield found
        return
    if os.geteuid() != 0:
        missing("this machine has no non-loopback IPv4 address, and making one needs root")
    link, address = "rwconf0", "198.51.100.77"
    subprocess.run([ip, "link", "add", link, "type", "veth", "peer", "name", "rwconf1"], check=True)
    try:
        subprocess.run([ip, "addr", "add", f"{address}/32", "dev", link], check=True)
        for name in (link, "rwconf1"):
            subprocess.run([ip, "link", "set", name, "up"], check=True)
        yield address
    finally:
        subprocess.run([ip, "link", "del", link], check=False)
