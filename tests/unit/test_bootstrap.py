"""`make setup`'s Debian step: the packages the suite needs (nginx, chromium, chromium-driver, postgresql) in one
apt-get run.

apt-get is a recording stand-in on PATH here (a real install needs root and the network, and would change this
machine); what is checked is which packages bootstrap asks for, and that it says what to run when it cannot.
"""

from __future__ import annotations

import importlib.util
import os
import stat
from pathlib import Path
from types import ModuleType

import pytest

from pipeline_components.settings import CHECKOUT


def load_bootstrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bootstrap", CHECKOUT / "scripts" / "bootstrap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An apt-get on PATH that appends its arguments to a log, one call a line."""
    log = tmp_path / "apt.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "apt-get"
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_the_missing_browser_packages_are_installed_in_one_apt_get_run(
    fake_apt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap = load_bootstrap()
    nginx = tmp_path / "nginx"
    nginx.touch()  # installed already: not asked for again
    monkeypatch.setattr(
        bootstrap,
        "DEBIAN_PACKAGES",
        {
            "nginx": (str(nginx), "the fleet"),
            "chromium": (str(tmp_path / "chromium"), "browser tests"),
            "chromium-driver": (str(tmp_path / "chromedriver"), "browser tests"),
        },
    )
    monkeypatch.setattr(os, "geteuid", lambda: 0)

    bootstrap.setup_debian_packages()

    calls = fake_apt.read_text().splitlines()
    assert calls[0] == "update -qq"
    assert calls[1] == "install -y -qq --no-install-recommends chromium chromium-driver"
    assert len(calls) == 2


def test_the_suite_asks_for_nginx_chromium_its_driver_and_postgresql() -> None:
    packages = load_bootstrap().DEBIAN_PACKAGES
    assert {name: path for name, (path, _) in packages.items()} == {
        "nginx": "/usr/sbin/nginx",
        "chromium": "/usr/bin/chromium",
        "chromium-driver": "/usr/bin/chromedriver",
        "postgresql": "/usr/bin/pg_ctlcluster",  # installed with the server binaries that deploy/postgres.py runs
        "redis-server": "/usr/bin/redis-server",  # the broker of a deployment (deploy/redis.py)
        "iproute2": "/sbin/ip",  # `ip`, which makes the hosts of a deployment (deploy/hosts.py)
        "nftables": "/usr/sbin/nft",  # the serving hosts' firewall (deploy/firewall.py)
    }


def test_without_root_it_says_what_to_run_as_root(
    fake_apt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap = load_bootstrap()
    monkeypatch.setattr(bootstrap, "DEBIAN_PACKAGES", {"chromium": (str(tmp_path / "chromium"), "browser tests")})
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(bootstrap.shutil, "which", lambda name: None if name == "sudo" else f"/usr/bin/{name}")

    bootstrap.setup_debian_packages()

    assert "run `apt-get install -y --no-install-recommends chromium` as root" in capsys.readouterr().out
    assert not fake_apt.exists()


def test_nothing_is_installed_when_every_package_is_there(
    fake_apt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap = load_bootstrap()
    present = tmp_path / "present"
    present.touch()
    monkeypatch.setattr(bootstrap, "DEBIAN_PACKAGES", {"chromium": (str(present), "browser tests")})
    bootstrap.setup_debian_packages()
    assert not fake_apt.exists()
