"""The three nginx configurations of the serving fleet, read and run by the tests.

- the local fleet's ``infra/nginx/fleet.conf.template`` (rendered by ``pipeline_components.fleet.nginx``),
- docker compose's ``infra/serving/nginx.conf``,
- Kubernetes' ``infra/k8s/base/config/nginx.conf``.

``parse`` reads a configuration into a tree; ``allow_lists`` pulls out what the load balancer publishes;
``runnable`` adapts a production configuration to run on this machine (loopback addresses, free ports, this nginx's
version), changing nothing else, so that a test can send it real requests.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from pipeline_components.settings import CHECKOUT

LOCAL_TEMPLATE = CHECKOUT / "infra" / "nginx" / "fleet.conf.template"
COMPOSE_CONF = CHECKOUT / "infra" / "serving" / "nginx.conf"
K8S_CONF = CHECKOUT / "infra" / "k8s" / "base" / "config" / "nginx.conf"
# Where each production configuration sends traffic: the names its upstreams use.
UPSTREAM_NAMES = {
    COMPOSE_CONF: ("tf-serving-1", "tf-serving-2", "tf-serving-3"),
    K8S_CONF: ("tf-serving-backends",),
}

Node = tuple[str, list[str], list[Any]]


def parse(text: str) -> list[Node]:
    """nginx.conf as a tree of (directive, arguments, children); a template's ``{{name}}`` reads as ``name``."""
    text = re.sub(r"\{\{(\w+)\}\}", r"\1", text)
    tokens = re.findall(
        r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[{};]|[^\s{};"\']+', re.sub(r"(?m)^\s*#.*$|\s#.*$", "", text)
    )
    stack: list[list[Any]] = [[]]
    words: list[str] = []
    for token in tokens:
        if token == ";":
            stack[-1].append((words[0], words[1:], []))
            words = []
        elif token == "{":
            block: list[Any] = []
            stack[-1].append((words[0], words[1:], block))
            stack.append(block)
            words = []
        elif token == "}":
            stack.pop()
        else:
            words.append(token[1:-1] if token[:1] in "\"'" else token)
    assert len(stack) == 1 and not words, "unbalanced nginx.conf"
    return stack[0]


def find(tree: list[Any], name: str) -> list[Node]:
    return [node for node in tree if node[0] == name]


def directive(tree: list[Any], name: str) -> list[str]:
    (node,) = find(tree, name)
    return node[1]


def http_block(text: str) -> list[Any]:
    (http,) = find(parse(text), "http")
    return http[2]


def allow_lists(text: str) -> dict[str, list[tuple[str, str]]]:
    """Each allow-list ``map`` of the configuration (``$runway_*_allowed``): its variable -> (pattern, value) pairs,
    the default included. Other maps (the local fleet's canary mirror) are not part of what is published."""
    maps = {}
    for _, arguments, entries in find(http_block(text), "map"):
        if arguments[-1].endswith("_allowed"):
            maps[arguments[-1]] = [(name, values[0]) for name, values, _ in entries]
    return maps


def public(location: Node) -> bool:
    """Whether a client can ask this location (an ``internal`` one, the canary mirror's, only nginx itself)."""
    return not find(location[2], "internal")


def locations(text: str, listen_port: str) -> list[Node]:
    """The public ``location`` blocks of the server listening on ``listen_port`` (``8500``; ``grpc_port`` in the
    template)."""
    for _, _, server in find(http_block(text), "server"):
        listens = [node[1][0] for node in find(server, "listen")]
        if any(listen.rsplit(":", 1)[-1] == listen_port for listen in listens):
            return [location for location in find(server, "location") if public(location)]
    raise AssertionError(f"no server listens on {listen_port}")


def nginx_version(binary: str) -> tuple[int, ...]:
    output = subprocess.run([binary, "-v"], capture_output=True, text=True, check=True).stderr
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", output)
    assert match, output
    return tuple(int(part) for part in match.groups())


def runnable(
    path: Path, *, binary: str, prefix: Path, ports: dict[int, int], upstreams: dict[int, int] | None = None
) -> str:
    """A production configuration adapted to this machine, everything else as written.

    The upstream names (``UPSTREAM_NAMES``) become 127.0.0.1 and lose ``resolve`` and ``zone`` (which need a name
    server), each port in ``upstreams`` becomes its value, each listening port in ``ports`` its value, the pid and
    temporary files go below ``prefix``, and an nginx older than 1.25.1 (Debian 12 ships 1.22) gets
    ``listen ... http2`` for the later ``http2 on``.
    """
    text = path.read_text()
    for name in UPSTREAM_NAMES[path]:
        for port, replacement in (upstreams or {}).items():
            text = text.replace(f"{name}:{port}", f"127.0.0.1:{replacement}")
        text = text.replace(f"{name}:", "127.0.0.1:")
    text = text.replace(" resolve ", " ")
    text = re.sub(r"(?m)^\s*zone .*$", "", text)
    text = text.replace(" /tmp/", f" {prefix}/tmp/")  # before any other path below prefix (itself in /tmp)
    text = re.sub(r"(?m)^pid .*$", f"pid {prefix}/nginx.pid;", text)
    text = re.sub(r"(?m)^(\s*)(error_log|access_log) /dev/std\w+", rf"\1\2 {prefix}/logs/nginx.log", text)
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        if f"{kind}_temp_path" not in text:
            text = text.replace("http {", f"http {{\n    {kind}_temp_path {prefix}/tmp/{kind};", 1)
    for port, replacement in ports.items():
        text = re.sub(rf"(?m)^(\s*)listen {port};", rf"\1listen 127.0.0.1:{replacement};", text)
    if nginx_version(binary) < (1, 25, 1):
        text = re.sub(r"listen ([\d.:]+);\n(\s*)http2 on;[^\n]*", r"listen \1 http2;", text)
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    return text


def nginx_test(binary: str, config: Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on ``config`` (prefix: its folder)."""
    return subprocess.run(
        [binary, "-t", "-p", str(config.parent), "-c", str(config), "-e", str(config.parent / "error.log")],
        capture_output=True,
        text=True,
    )
