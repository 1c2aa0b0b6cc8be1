"""Hosts as real network namespaces (``pipeline_components/deploy/hosts.py``): made by ``ip`` as root, a TCP server
in one host reached from another host and from the root namespace by address (never on root's loopback), a cut
cable stops it and a restored one brings it back, two RUNWAY_HOMEs never collide, and ``down`` leaves nothing."""

from __future__ import annotations

import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipeline_components.deploy.hosts import DEFAULT_HOSTS, HostPlan, Hosts, find_ip
from pipeline_components.errors import ConfigError, NetworkNamespaceError
from pipeline_components.processes import wait_for
from tests.helpers import missing

PORT = 18_080
# A real TCP server (it answers each connection with its host's name) and a client that says whether one connects.
SERVER = (
    "import socket, sys\n"
    "server = socket.create_server((sys.argv[1], int(sys.argv[2])))\n"
    "while True:\n"
    "    connection, _ = server.accept()\n"
    "    connection.sendall(sys.argv[3].encode())\n"
    "    connection.close()\n"
)
CLIENT = (
    "import socket, sys\n"
    "with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.0) as connection:\n"
    "    print(connection.recv(64).decode())\n"
)


def _make(home: Path, **kwargs: object) -> Hosts:
    return Hosts(HostPlan.for_home(home, **kwargs))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="runway-hosts-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def hosts(home: Path) -> Iterator[Hosts]:
    try:
        find_ip()
    except NetworkNamespaceError as absent:
        missing(str(absent))
    if os.geteuid() != 0:
        missing("hosts are network namespaces: these tests need root (as on the development machines and in CI)")
    made = _make(home)
    try:
        made.up()
        yield made
    finally:
        made.down()  # even when a test failed: no namespace or link outlives the module


@pytest.fixture(scope="module")
def server(hosts: Hosts) -> Iterator[str]:
    """A TCP server listening on ``worker-1``'s address, inside ``worker-1``; yields that address."""
    address = hosts.plan.host("worker-1").address
    process = hosts.popen("worker-1", [sys.executable, "-c", SERVER, address, str(PORT), "worker-1"])
    try:
        assert wait_for(lambda: _answer(address) == "worker-1", timeout=10), "the server in worker-1 never answered"
        yield address
    finally:
        process.kill()
        process.wait(timeout=10)


def _answer(address: str, port: int = PORT, timeout: float = 1.0) -> str | None:
    """What the server at ``address`` says, asked from the root namespace; None when nothing connects in time."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as connection:
            return connection.recv(64).decode()
    except OSError:
        return None


def _answer_from(hosts: Hosts, host: str, address: str) -> str | None:
    done = hosts.exec(host, [sys.executable, "-c", CLIENT, address, str(PORT)], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def test_up_twice_makes_every_host_once(hosts: Hosts) -> None:
    before = hosts.leftovers()
    statuses = hosts.up()  # the second up: harmless
    assert hosts.leftovers() == before
    assert [s.name for s in statuses] == list(DEFAULT_HOSTS)
    assert all(s.exists and s.link == "up" for s in statuses), statuses
    addresses = [s.address for s in statuses]
    assert len(set(addresses)) == len(addresses)
    assert all(hosts.plan.subnet.overlaps(ipaddress.ip_network(a)) for a in addresses)
    # One namespace per host and one veth per host plus the bridge, all named within Linux's 15 characters.
    assert len([name for name in before if name.startswith("netns ")]) == len(DEFAULT_HOSTS)
    links = [name.removeprefix("link ") for name in before if name.startswith("link ")]
    assert len(links) == len(DEFAULT_HOSTS) + 1
    assert all(len(name) <= 15 for name in links)


def test_a_server_in_one_host_is_reached_by_address_from_hosts_and_root_not_on_root_loopback(
    hosts: Hosts, server: str
) -> None:
    assert _answer_from(hosts, "client", server) == "worker-1"
    assert _answer_from(hosts, "control", server) == "worker-1"
    assert _answer(server) == "worker-1"  # the root namespace, through the bridge's gateway
    assert _answer("127.0.0.1") is None  # the host's port is not the root namespace's
    # And a host's own loopback is its own: the root namespace's servers are not on it.
    assert _answer_from(hosts, "client", "127.0.0.1") is None


def test_a_host_reaches_the_root_namespace_on_the_gateway_address(hosts: Hosts) -> None:
    with socket.create_server((hosts.plan.gateway, PORT)) as listening:
        listening.settimeout(10)

        def answer_once() -> None:
            connection, _ = listening.accept()
            with connection:
                connection.sendall(b"root")

        responder = threading.Thread(target=answer_once)
        responder.start()
        try:
            assert _answer_from(hosts, "worker-2", hosts.plan.gateway) == "root"
        finally:
            responder.join(timeout=15)


def test_cut_stops_traffic_both_ways_and_restore_brings_it_back(hosts: Hosts, server: str) -> None:
    hosts.cut("worker-1")
    try:
        assert {s.name: s.link for s in hosts.status()}["worker-1"] == "cut"
        assert _answer(server) is None  # the connect times out (1 s): nothing reaches the host
        assert _answer_from(hosts, "client", server) is None
        # Nor does anything leave it: worker-1 cannot reach control's address.
        control = hosts.plan.host("control").address
        probe = hosts.exec(
            "worker-1",
            [sys.executable, "-c", "import socket, sys; socket.create_connection((sys.argv[1], 22), timeout=1.0)",
             control],
            capture_output=True, text=True,
        )  # fmt: skip
        assert probe.returncode != 0 and "refused" not in probe.stderr.lower(), probe.stderr
    finally:
        hosts.restore("worker-1")
    assert wait_for(lambda: _answer(server) == "worker-1", timeout=10)
    assert _answer_from(hosts, "client", server) == "worker-1"
    assert {s.name: s.link for s in hosts.status()}["worker-1"] == "up"


@pytest.fixture
def other_home(hosts: Hosts) -> Iterator[Path]:
    """A second RUNWAY_HOME; whatever a test made under its prefix is removed afterwards, even when it failed."""
    folder = Path(tempfile.mkdtemp(prefix="runway-hosts-other-"))
    try:
        yield folder
    finally:
        Hosts(HostPlan.for_home(folder, names=("x",))).down()  # down() removes by prefix, whatever the plan
        shutil.rmtree(folder, ignore_errors=True)


def test_a_second_home_does_not_collide_and_down_leaves_nothing(hosts: Hosts, server: str, other_home: Path) -> None:
    other = _make(other_home, names=("control", "worker-1"))
    # A subnet that another deployment already routes is refused, with what to do.
    clash = _make(other_home, names=("control",), subnet=str(hosts.plan.subnet))
    with pytest.raises(ConfigError, match=r"overlaps .* another subnet"):
        clash.up()
    if other.plan.subnet == hosts.plan.subnet:  # 1 in 256 homes hash to the same default /24
        other = _make(other_home, names=("control", "worker-1"), subnet="10.232.255.0/24")
    other.up()
    assert other.plan.prefix != hosts.plan.prefix
    assert not set(other.leftovers()) & set(hosts.leftovers())
    # Both deployments work side by side: same host names, different namespaces and addresses.
    assert _answer_from(hosts, "client", server) == "worker-1"
    assert [s.link for s in other.status()] == ["up", "up"]
    other.down()
    assert other.leftovers() == []
    assert _answer(server) == "worker-1"  # removing the other deployment left this one alone
    assert not any(other.plan.prefix in line for line in _ip("netns", "list") + _ip("-br", "link"))


def test_down_leaves_no_namespace_or_link_and_is_idempotent(hosts: Hosts, other_home: Path) -> None:
    # A plan of its own under another home, so the module's hosts stay up for the tests above.
    own = _make(other_home, names=("a", "b", "c"), subnet="10.232.254.0/24")
    own.up()
    assert len(own.leftovers()) == 3 + 3 + 1
    # Hosts that are up keep their subnet: their services listen on those addresses.
    with pytest.raises(ConfigError, match=r"up on subnet 10\.232\.254\.0/24, not 10\.232\.253\.0/24: run down"):
        _make(other_home, names=("a", "b", "c"), subnet="10.232.253.0/24").up()
    own.down()
    own.down()  # nothing left to remove: harmless
    assert own.leftovers() == []
    assert not any(own.plan.prefix in line for line in _ip("netns", "list") + _ip("-br", "link"))
    assert [s.exists for s in own.status()] == [False, False, False]


def _ip(*args: str) -> list[str]:
    return subprocess.run([find_ip(), *args], capture_output=True, text=True, check=True).stdout.splitlines()


@pytest.mark.parametrize(
    ("names", "subnet", "message"),
    [
        pytest.param(("control", "control"), None, "unique; repeated: control", id="repeated"),
        pytest.param(("Control",), None, "lower-case", id="malformed"),
        pytest.param(("a", "b", "c"), "10.231.9.0/30", "room for 1 hosts, 3 asked", id="subnet-too-small"),
        pytest.param(("a",), "10.231.9.0/33", "IPv4 network", id="subnet-malformed"),
    ],
)
def test_a_bad_plan_is_refused_with_what_to_do(names: tuple[str, ...], subnet: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        HostPlan.for_home(Path("/tmp/runway-hosts-plan"), names=names, subnet=subnet)


def test_not_root_is_refused_with_what_to_do(hosts: Hosts) -> None:
    # Really as another user: a forked child drops to the unprivileged `nobody` and runs up(), which must refuse
    # with the typed error and what to do (not ip's own "Operation not permitted"). Forked, not exec'd: `nobody`
    # may not be allowed to execute this interpreter.
    nobody = pwd.getpwnam("nobody")
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        os.close(reader)
        answer = "no error"
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            Hosts(HostPlan.for_home(Path("/tmp/runway-hosts-nobody"))).up()
        except NetworkNamespaceError as refused:
            answer = f"NetworkNamespaceError: {refused}"
        except BaseException as other:  # reported to the parent, which fails the test
            answer = f"{type(other).__name__}: {other}"
        os.write(writer, answer.encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        answer = pipe.read()
    os.waitpid(child, 0)
    assert answer.startswith("NetworkNamespaceError:") and "needs root" in answer and "sudo" in answer, answer


def test_two_ups_at_once_both_succeed_and_make_each_host_once(other_home: Path) -> None:
    # Two `runway deploy up` of one RUNWAY_HOME started together: neither fails on what the other is making.
    plans = [_make(other_home, names=("a", "b", "c", "d"), subnet="10.232.252.0/24") for _ in range(2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = list(pool.map(lambda hosts: hosts.up(), plans))
    assert statuses[0] == statuses[1]
    assert all(s.exists and s.link == "up" for s in statuses[0]), statuses[0]
    assert len(plans[0].leftovers()) == 4 + 4 + 1


def test_namespaces_refused_by_the_kernel_say_what_to_do(hosts: Hosts) -> None:
    # Root of a fresh user namespace, as in a container without CAP_NET_ADMIN: uid 0, but the kernel refuses it
    # links and namespaces of this machine. up() must say so and what to do, not pass ip's message on bare.
    script = (
        "from pathlib import Path\n"
        "from pipeline_components.deploy.hosts import HostPlan, Hosts\n"
        "from pipeline_components.errors import NetworkNamespaceError\n"
        "try:\n"
        "    Hosts(HostPlan.for_home(Path('/tmp/runway-hosts-userns'))).up()\n"
        "except NetworkNamespaceError as refused:\n"
        "    print(f'NetworkNamespaceError: {refused}')\n"
    )
    checkout = Path(__file__).resolve().parents[3]
    unshare = shutil.which("unshare")
    if unshare is None:
        missing("util-linux's unshare is not installed")
    assert unshare is not None
    done = subprocess.run(
        [unshare, "--user", "--map-root-user", "--", sys.executable, "-c", script],
        capture_output=True, text=True, cwd=checkout, check=False,
    )  # fmt: skip
    if "unshare failed" in done.stderr:
        missing(f"this kernel does not allow user namespaces: {done.stderr.strip()}")
    assert done.stdout.startswith("NetworkNamespaceError:"), done.stdout + done.stderr
    assert "does not let this process make network namespaces" in done.stdout
    assert "CAP_NET_ADMIN" in done.stdout


def test_no_iproute2_says_to_install_it(hosts: Hosts) -> None:
    # A private mount namespace where every `ip` binary is /dev/null (not executable): as a machine without
    # iproute2 looks to up(), while this machine keeps its own.
    binaries = {os.path.realpath(p) for p in ("/usr/bin/ip", "/bin/ip", "/usr/sbin/ip", "/sbin/ip") if Path(p).exists()}
    hide = " && ".join(f"mount --bind /dev/null {binary}" for binary in sorted(binaries))
    script = (
        "from pathlib import Path\n"
        "from pipeline_components.deploy.hosts import HostPlan, Hosts\n"
        "from pipeline_components.errors import NetworkNamespaceError\n"
        "try:\n"
        "    Hosts(HostPlan.for_home(Path('/tmp/runway-hosts-no-ip'))).up()\n"
        "except NetworkNamespaceError as refused:\n"
        "    print(f'NetworkNamespaceError: {refused}')\n"
    )
    done = subprocess.run(
        ["unshare", "--mount", "--", "sh", "-c", f'{hide} && exec "$0" -c "$1"', sys.executable, script],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[3], check=False,
    )  # fmt: skip
    assert done.stdout.startswith("NetworkNamespaceError:"), done.stdout + done.stderr
    assert "`ip` command of iproute2, which is not installed" in done.stdout and "make setup" in done.stdout
