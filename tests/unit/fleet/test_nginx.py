"""The load balancer publishes TF Serving's public API and nothing else, in all three shapes of the fleet.

Static: the local fleet's template, docker compose's and Kubernetes' nginx.conf carry the same allow-list, it admits
exactly ``PUBLIC_GRPC_METHODS`` of TF Serving's services (``HandleReloadConfigRequest`` not), and no request reaches
``proxy_pass``/``grpc_pass`` without passing it.

Running: each configuration in a real nginx, in front of a recording upstream that stands in for the model servers
(what is under test is nginx's decision, and the recorder shows what got through; ``tests/fleet/test_load_balancer.py``
does the same against real model servers). gRPC calls are made with grpcio, as a client would.
"""

from __future__ import annotations

import http.server
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from pipeline_components import serving_protos as sp
from pipeline_components.fleet import InstanceAddress
from pipeline_components.fleet.nginx import (
    CANARY_CONF,
    PUBLIC_GRPC_METHODS,
    canary_mirrors,
    nginx_argv,
    render_canary,
    render_config,
    set_canary_mirror,
    set_in_rotation,
)
from pipeline_components.fleet.supervisor import port_open
from pipeline_components.ports import free_ports
from tests.helpers import require_nginx
from tests.unit.fleet.nginx_conf import (
    COMPOSE_CONF,
    K8S_CONF,
    LOCAL_TEMPLATE,
    allow_lists,
    find,
    locations,
    nginx_test,
    runnable,
)

CONFIGS = {"local": LOCAL_TEMPLATE, "compose": COMPOSE_CONF, "kubernetes": K8S_CONF}
RELOAD = "/tensorflow.serving.ModelService/HandleReloadConfigRequest"


def service_methods() -> list[str]:
    """Every method of TF Serving's two gRPC services, as the vendored stubs call them."""

    class Recording:
        def __init__(self) -> None:
            self.paths: list[str] = []

        def unary_unary(self, path: str, **kwargs: object) -> None:
            self.paths.append(path)

    channel = Recording()
    sp.PredictionServiceStub(channel)
    sp.ModelServiceStub(channel)
    return channel.paths


def grpc_allowed(text: str, path: str) -> bool:
    entries = allow_lists(text)["$runway_grpc_allowed"]
    return any(value == "1" and re.search(pattern[1:], path) for pattern, value in entries if pattern[:1] == "~")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_allow_list_is_tf_servings_public_api(name: str) -> None:
    text = CONFIGS[name].read_text()
    methods = service_methods()
    assert RELOAD in methods  # the descriptors know the admin method this list must leave out
    published = sorted(method for method in methods if grpc_allowed(text, method))
    assert published == sorted(f"/{method}" for method in PUBLIC_GRPC_METHODS)
    assert not grpc_allowed(text, "/grpc.health.v1.Health/Check")
    assert allow_lists(text) == allow_lists(LOCAL_TEMPLATE.read_text()), "the three configurations must agree"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_no_request_reaches_an_instance_without_passing_the_allow_list(name: str) -> None:
    text = CONFIGS[name].read_text()
    grpc_port, rest_port = ("grpc_port", "rest_port") if name == "local" else ("8500", "8501")
    for port, variable, pass_directive in (
        (grpc_port, "$runway_grpc_allowed", "grpc_pass"),
        (rest_port, "$runway_rest_allowed", "proxy_pass"),
    ):
        (location,) = locations(text, port)
        body = location[2]
        assert find(body, pass_directive), f"{name}: port {port} passes nothing"
        (guard,) = find(body, "if")
        assert guard[1] == ["(", variable, "=", "0", ")"] or guard[1] == [f"({variable}", "=", "0)"]
        assert find(guard[2], "return"), f"{name}: the guard on port {port} must answer, not pass"


# --- a real nginx in front of a recording upstream --------------------------------------------------------------


@dataclass
class Recorder:
    """Stands in for the model servers: answers every gRPC method and REST path, and records what reached it."""

    grpc_port: int
    rest_port: int
    calls: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    grpc_port, rest_port = free_ports(2)
    recording = Recorder(grpc_port, rest_port)

    class Echo(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
            recording.calls.append(details.method)
            return grpc.unary_unary_rpc_method_handler(lambda request, context: b"")

    class Rest(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            recording.calls.append(f"{self.command} {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST = answer

        def log_message(self, *args: object) -> None:
            pass

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((Echo(),))
    server.add_insecure_port(f"127.0.0.1:{grpc_port}")
    server.start()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", rest_port), Rest)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield recording
    finally:
        httpd.shutdown()
        server.stop(grace=None)


@dataclass
class Balancer:
    grpc_target: str
    rest_url: str


def start_nginx(name: str, recorder: Recorder, prefix: Path) -> tuple[subprocess.Popen[bytes], Balancer]:
    binary = require_nginx()
    grpc_port, rest_port, health_port = free_ports(3)
    conf = prefix / "nginx.conf"
    if name == "local":
        address = InstanceAddress(
            name="serving-0",
            rest_url=f"http://127.0.0.1:{recorder.rest_port}",
            grpc_target=f"127.0.0.1:{recorder.grpc_port}",
            store_path=str(prefix),
        )
        (prefix / "tmp").mkdir(parents=True)
        text = render_config(
            addresses=[address], host="127.0.0.1", rest_port=rest_port, grpc_port=grpc_port, nginx_dir=prefix,
            log_dir=prefix,
        )  # fmt: skip
        (prefix / CANARY_CONF).write_text(render_canary({}))
        argv = nginx_argv(binary, conf, prefix)
    else:
        text = runnable(
            CONFIGS[name],
            binary=binary,
            prefix=prefix,
            ports={8500: grpc_port, 8501: rest_port, 8081: health_port},
            upstreams={8500: recorder.grpc_port, 8501: recorder.rest_port},
        )
        argv = [*nginx_argv(binary, conf, prefix), "-g", "daemon off;"]
    conf.write_text(text)
    check = nginx_test(binary, conf)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not (port_open(grpc_port) and port_open(rest_port)):
        assert process.poll() is None, f"nginx exited: {(prefix / 'error.log').read_text(errors='replace')}"
        assert time.monotonic() < deadline, "nginx did not listen within 20 s"
        time.sleep(0.05)
    return process, Balancer(f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{rest_port}")


@pytest.fixture(params=sorted(CONFIGS))
def balancer(request: pytest.FixtureRequest, recorder: Recorder, tmp_path: Path) -> Iterator[Balancer]:
    process, running = start_nginx(request.param, recorder, tmp_path)
    try:
        yield running
    finally:
        process.terminate()
        process.wait(timeout=20)


def call(balancer: Balancer, method: str) -> grpc.StatusCode:
    with grpc.insecure_channel(balancer.grpc_target) as channel:
        try:
            channel.unary_unary(method)(b"", timeout=10)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def get(balancer: Balancer, method: str, path: str) -> int:
    request = urllib.request.Request(balancer.rest_url + path, method=method, data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        assert error.headers.get("Content-Type") == "application/json" and b'"error"' in error.read()
        return int(error.code)


def test_the_reload_method_is_refused_and_never_reaches_an_instance(balancer: Balancer, recorder: Recorder) -> None:
    recorder.calls.clear()
    assert call(balancer, RELOAD) == grpc.StatusCode.PERMISSION_DENIED
    # Spellings that a path normalization could turn into an allowed method, and another service.
    sneaky = RELOAD + "/../../tensorflow.serving.PredictionService/Predict"
    assert call(balancer, sneaky) == grpc.StatusCode.PERMISSION_DENIED
    assert call(balancer, "/grpc.health.v1.Health/Check") == grpc.StatusCode.PERMISSION_DENIED
    assert recorder.calls == []


def test_the_public_grpc_methods_pass(balancer: Balancer, recorder: Recorder) -> None:
    recorder.calls.clear()
    for method in PUBLIC_GRPC_METHODS:
        assert call(balancer, f"/{method}") == grpc.StatusCode.OK, method
    assert recorder.calls == [f"/{method}" for method in PUBLIC_GRPC_METHODS]


# (method, path, whether the load balancer passes it): TF Serving's REST API, and what is not part of it.
REST_REQUESTS = [
    ("GET", "/v1/models/flights_delay", True),
    ("GET", "/v1/models/flights_delay/labels/stable", True),
    ("GET", "/v1/models/flights_delay/versions/3/metadata", True),
    ("POST", "/v1/models/flights_delay:predict", True),
    ("POST", "/v1/models/flights_delay/labels/canary:classify", True),
    ("POST", "/v1/models/flights_delay/versions/3:regress", True),
    ("GET", "/monitoring/prometheus/metrics", False),
    ("POST", "/v1/models/flights_delay", False),
    ("DELETE", "/v1/models/flights_delay", False),
    ("GET", "/v1/models/flights_delay/../../monitoring/prometheus/metrics", False),
    ("GET", "/", False),
]


def test_rest_passes_the_public_api_only(balancer: Balancer, recorder: Recorder) -> None:
    recorder.calls.clear()
    for method, path, public in REST_REQUESTS:
        assert get(balancer, method, path) == (200 if public else 403), f"{method} {path}"
    assert recorder.calls == [f"{method} {path}" for method, path, public in REST_REQUESTS if public]


def test_the_local_fleets_config_balances_rest_and_grpc_over_every_instance(tmp_path: Path) -> None:
    addresses = [
        InstanceAddress(name=f"serving-{i}", rest_url=f"http://127.0.0.1:{9001 + 10 * i}",
                        grpc_target=f"127.0.0.1:{9000 + 10 * i}", store_path=str(tmp_path))
        for i in range(3)
    ]  # fmt: skip
    text = render_config(
        addresses=addresses, host="127.0.0.1", rest_port=7501, grpc_port=7500, nginx_dir=tmp_path, log_dir=tmp_path
    )

    assert "grpc_pass grpc://runway_grpc;" in text and "listen 127.0.0.1:7500 http2;" in text
    assert "server 127.0.0.1:9021 max_fails=1 fail_timeout=5s;" in text
    assert "grpc_next_upstream error timeout" in text and "non_idempotent" in text
    assert "{{" not in text
    (tmp_path / "tmp").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    (tmp_path / CANARY_CONF).write_text(render_canary({}))
    check = nginx_test(require_nginx(), conf)
    assert check.returncode == 0, check.stderr

    # A canary analysis mirrors a share of one model's stable predict requests (and a whole one's), then stops.
    assert not set_canary_mirror(tmp_path, "flights", 30, master_pid=None)  # no nginx runs: nothing reloaded
    set_canary_mirror(tmp_path, "penguins", 100, master_pid=None)
    assert canary_mirrors(tmp_path) == {"flights": 30, "penguins": 100}
    mirrored = (tmp_path / CANARY_CONF).read_text()
    assert "30% 1; * 0;" in mirrored and "penguins 1;" in mirrored and "flights $runway_canary_draw_0;" in mirrored
    check = nginx_test(require_nginx(), conf)
    assert check.returncode == 0, check.stderr
    set_canary_mirror(tmp_path, "flights", None, master_pid=None)
    set_canary_mirror(tmp_path, "penguins", None, master_pid=None)
    assert canary_mirrors(tmp_path) == {} and (tmp_path / CANARY_CONF).read_text() == render_canary({})

    # An instance stopped by hand is taken out of rotation on both protocols, the others stay; and put back.
    assert set_in_rotation(conf, addresses[1], serving=False)
    assert not set_in_rotation(conf, addresses[1], serving=False)  # already out: nothing to reload
    down = conf.read_text()
    assert "server 127.0.0.1:9011 max_fails=1 fail_timeout=5s down;" in down
    assert "server 127.0.0.1:9010 max_fails=1 fail_timeout=5s down;" in down
    assert down.count(" down;") == 2
    assert nginx_test(require_nginx(), conf).returncode == 0
    assert set_in_rotation(conf, addresses[1], serving=True)
    assert conf.read_text() == text
