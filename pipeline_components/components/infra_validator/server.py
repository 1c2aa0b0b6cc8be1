"""A model server process for infra validation: free loopback ports, production flags, always stopped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pipeline_components.ports import free_ports

VERSION = 1


def server_command() -> tuple[list[str], str]:
    """The real ``tensorflow_model_server`` when on PATH, else runway's compatible server in this interpreter."""
    real = shutil.which("tensorflow_model_server")
    if real:
        return [real], "tensorflow_model_server"
    return [sys.executable, "-m", "pipeline_components.serving"], "runway-model-server"


class ValidationServer:
    """One server serving one model (version 1 = the candidate) from ``workdir``, its log in ``log_path``."""

    def __init__(self, *, model_name: str, model_dir: Path, workdir: Path, log_path: Path) -> None:
        self.model_name = model_name
        self.workdir = workdir
        self.log_path = log_path
        self.base = workdir / "base" / model_name
        self.base.mkdir(parents=True, exist_ok=True)
        os.symlink(model_dir.resolve(), self.base / str(VERSION))
        self.config_file = workdir / "models.config"
        # Production shape (pipeline_components/fleet): a model config file, warmup on, versions pinned.
        self.config_file.write_text(
            "model_config_list {\n  config {\n"
            f'    name: "{model_name}"\n    base_path: "{self.base.resolve()}"\n'
            '    model_platform: "tensorflow"\n'
            f"    model_version_policy {{ specific {{ versions: {VERSION} }} }}\n"
            "  }\n}\n"
        )
        self.grpc_port, self.rest_port = free_ports(2)
        self.command, self.kind = server_command()
        self.args = [
            f"--port={self.grpc_port}",
            f"--rest_api_port={self.rest_port}",
            f"--model_config_file={self.config_file}",
            "--enable_model_warmup=true",
            "--file_system_poll_wait_seconds=1",
            "--max_num_load_retries=0",  # a model that fails to load is refused, not retried for minutes
        ]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*self.command, *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends it and anything it started
            )

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""

    def wait_available(self, timeout_s: float) -> tuple[bool, str]:
        """Poll the REST status until version 1 is AVAILABLE; (False, why) on exit, load error or timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False, f"the server exited with status {self.process.returncode} before the model was available"
            try:
                status = self.get_json(f"/v1/models/{self.model_name}", timeout=5)
            except (OSError, ValueError):
                time.sleep(0.25)
                continue
            for version in status.get("model_version_status", []):
                if int(version.get("version", -1)) != VERSION:
                    continue
                if version.get("state") == "AVAILABLE":
                    return True, "AVAILABLE"
                error = version.get("status", {})
                if version.get("state") == "END" and error.get("error_code", "OK") != "OK":
                    return False, f"the server could not load the model: {error.get('error_message', '')}".strip()
            time.sleep(0.25)
        return False, f"the model was not AVAILABLE within {timeout_s:.0f} s"

    def get_json(self, path: str, timeout: float = 30) -> Any:
        with urllib.request.urlopen(self.rest + path, timeout=timeout) as reply:
            return json.loads(reply.read())

    def post_json(self, path: str, document: Any, timeout: float = 30) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.rest + path,
            data=json.dumps(document).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as error:
            body = error.read()
            try:
                return error.code, json.loads(body)
            except ValueError:
                return error.code, {"error": body.decode(errors="replace")}

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after 10 s; idempotent."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass
