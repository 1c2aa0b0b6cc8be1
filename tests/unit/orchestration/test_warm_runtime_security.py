"""Who may reach the warm runtime and what it runs (issue 15, Security 6).

The socket lives in a private runtime folder, never under ``RUNWAY_HOME`` (the volume serving containers mount); a
folder that another user owns or may enter is refused; a process of another user that reaches the socket anyway is
dropped unanswered (``SO_PEERCRED``); and a request runs only runway's own entry points. The service is the real
one, with a light preload and the fake node (``warm_fakes``). The tests run as root here; the other user is
``nobody``, in a forked child that drops to it before it connects.
"""

from __future__ import annotations

import json
import os
import pwd
import select
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline_components.orchestration.runner import NodeCommand
from pipeline_components.orchestration.warm_client import (
    ServicePaths,
    UnsafeRuntimeFolderError,
    WarmNodeRunner,
    WarmSettings,
    ping,
)
from pipeline_components.ports import free_ports
from pipeline_components.processes import wait_for
from pipeline_components.settings import Settings
from pipeline_components.warm_protocol import ENTRY_POINTS, run_message, split_trailer
from tests.unit.orchestration.warm_fakes import (
    fake_env_fixture,  # noqa: F401 - the fixture fake_env
    run,
)

NOBODY = pwd.getpwnam("nobody")


def started(settings: Settings) -> ServicePaths:
    runner = WarmNodeRunner(settings=settings, warm=WarmSettings.from_env())
    outcome, lines = run(runner, "ok")
    assert outcome.returncode == 0 and runner.used_warm, lines
    return ServicePaths.for_settings(settings)


def test_the_socket_lives_in_a_private_runtime_folder_not_under_the_home(fake_env: Settings) -> None:
    paths = started(fake_env)
    xdg = Path(os.environ["XDG_RUNTIME_DIR"])
    for path in (paths.socket, paths.pidfile, paths.lockfile):
        assert path.exists() and path.parent == paths.folder and paths.folder.parent == xdg
        assert not path.is_relative_to(fake_env.home)
    assert not [p for p in fake_env.home.rglob("*") if p.is_socket()], "no socket on the shared volume"
    assert paths.folder.stat().st_mode & 0o777 == 0o700 and paths.socket.stat().st_mode & 0o777 == 0o600
    assert paths.logfile.is_relative_to(fake_env.home)  # the log stays with the home it serves
    # Without XDG_RUNTIME_DIR: the system temp folder, named with the uid and a hash of the home.
    home = Settings.from_env({"RUNWAY_HOME": "/srv/runway"})
    fallback = ServicePaths.for_settings(home, environ={})
    assert fallback.folder.parent == Path(tempfile.gettempdir())
    assert fallback.folder.name.startswith(f"runway-{os.getuid()}-")
    assert ServicePaths.for_settings(fake_env, environ={}).folder != fallback.folder  # one folder per home
    deep = Settings.from_env({"RUNWAY_HOME": "/srv/" + "x" * 120})
    assert len(str(ServicePaths.for_settings(deep, environ={"XDG_RUNTIME_DIR": "/" + "y" * 90}).socket)) <= 100


def _open_to_others(folder: Path) -> None:
    os.chmod(folder, 0o755)


def _owned_by_nobody(folder: Path) -> None:
    os.chown(folder, NOBODY.pw_uid, NOBODY.pw_gid)


def _a_symlink(folder: Path) -> None:
    folder.rmdir()
    folder.symlink_to(tempfile.mkdtemp(dir=folder.parent))


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_open_to_others, id="open-to-others"),
        pytest.param(_owned_by_nobody, id="owned-by-another-user"),
        pytest.param(_a_symlink, id="a-symlink"),
    ],
)
def test_a_runtime_folder_that_is_not_private_is_refused(fake_env: Settings, spoil: Callable[[Path], None]) -> None:
    paths = ServicePaths.for_settings(fake_env)
    paths.folder.mkdir(mode=0o700)
    spoil(paths.folder)
    runner = WarmNodeRunner(settings=fake_env, warm=WarmSettings.from_env())
    outcome, lines = run(runner, "ok")
    assert outcome.returncode == 0 and runner.used_warm is False  # the node ran, cold
    fallback = next(line for line in lines if "running the node in a cold process" in line)
    assert str(paths.folder) in fallback and "0700" in fallback and "XDG_RUNTIME_DIR" in fallback
    assert not paths.socket.exists()
    with pytest.raises(UnsafeRuntimeFolderError, match="rm -r"):
        ping(paths, timeout=1)
    # The service itself refuses to listen there, whoever starts it.
    service = subprocess.run(
        [sys.executable, "-m", "pipeline_components.runtime.warm", "serve", "--socket", str(paths.socket)],
        env={**os.environ, "RUNWAY_WARM_PRELOAD": "json"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert service.returncode == 2 and "must be a folder of uid" in service.stderr, service.stderr
    assert not paths.socket.exists()


def ask_as_nobody(path: Path, message: dict[str, object]) -> bytes:
    """Connect to ``path`` as user ``nobody`` (a forked child that drops root first), send ``message``, return
    every byte answered until the service closed the connection (a failed connect comes back as an error text)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only system calls, then _exit
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY.pw_gid)
            os.setuid(NOBODY.pw_uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                sock.connect(str(path))
                try:
                    sock.sendall((json.dumps(message) + "\n").encode())
                    while chunk := sock.recv(65536):
                        os.write(write_end, chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # dropped by the service: nothing answered
            code = 0
        except OSError as err:
            os.write(write_end, f"CHILD-ERROR {err!r}".encode())
        finally:
            os._exit(code)
    os.close(write_end)
    received = b""
    while select.select([read_end], [], [], 30)[0] and (chunk := os.read(read_end, 65536)):
        received += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    return received


def test_a_process_of_another_user_is_refused(fake_env: Settings, tmp_path: Path) -> None:
    paths = started(fake_env)
    # Open the way on purpose, as a mistaken chmod would: any user may now walk to the socket and connect. Only
    # the service's peer check stands between user nobody and the service.
    os.chmod(paths.folder.parent, 0o711)
    os.chmod(paths.folder, 0o711)
    os.chmod(paths.socket, 0o666)
    stamp = tmp_path / "stamp"
    assert ask_as_nobody(paths.socket, {"op": "ping"}) == b"", "the service answered another user"
    request = run_message(
        request_id="nobody", module="fake_node", args=["sleep", "0", str(stamp)], env={}, cwd=str(tmp_path)
    )
    assert ask_as_nobody(paths.socket, request) == b""
    refused = f"uid {NOBODY.pw_uid}: only uid {os.getuid()} may connect"
    assert wait_for(lambda: paths.logfile.read_text().count(refused) == 2, timeout=10), paths.logfile.read_text()
    assert not stamp.exists(), "a request of another user ran"
    os.chmod(paths.folder, 0o700)
    assert ping(paths, timeout=2) is not None  # the owner is served as before


@pytest.mark.parametrize("module", ["os", "http.server", "planted"])
def test_a_request_runs_only_the_projects_entry_points(fake_env: Settings, tmp_path: Path, module: str) -> None:
    marker = tmp_path / "planted-ran"
    (tmp_path / "modules" / "planted.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    paths = started(fake_env)
    served = ping(paths, timeout=2)["served"]  # type: ignore[index]
    (port,) = free_ports(1)
    request = run_message(
        request_id="x", module=module, args=["--bind", "127.0.0.1", str(port)], env={}, cwd=str(tmp_path)
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)  # a module that ran (http.server) would never answer: fail, do not hang
        sock.connect(str(paths.socket))
        sock.sendall((json.dumps(request) + "\n").encode())
        answer = sock.makefile("rb").read().decode()
    _, trailer = split_trailer(answer.rstrip("\n").split("\n")[-1])  # (splitlines would split at the marker's \x1e)
    assert trailer is not None and trailer["returncode"] is None
    assert f"not {module!r}" in trailer["error"] and all(entry in trailer["error"] for entry in ENTRY_POINTS)
    assert ping(paths, timeout=2)["served"] == served, "nothing was forked"  # type: ignore[index]
    assert not marker.exists()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "http.server is listening"


def test_a_refused_module_runs_cold_in_the_callers_own_process(fake_env: Settings) -> None:
    started(fake_env)
    runner = WarmNodeRunner(settings=fake_env, warm=WarmSettings.from_env())
    lines: list[str] = []
    outcome = runner.run(NodeCommand(argv=[sys.executable, "-m", "json.tool", "--help"]), log=lines.append)
    assert outcome.returncode == 0 and runner.used_warm is False
    assert any("runs only runway's own entry points" in line and "'json.tool'" in line for line in lines), lines
