"""Hosts on one machine: Linux network namespaces joined by a bridge, where ``runway deploy`` places its services.

``Hosts(HostPlan.for_home(home))`` makes one network namespace per named host (``control``, ``worker-1``, ...), each
with its own address in a private ``/24`` and a veth pair whose other end sits on one bridge in the root namespace::

    root namespace:  bridge <prefix>-br  (gateway, e.g. 10.231.87.1/24)
                        ├── <prefix>-v0 ══ eth0 in namespace <prefix>-control   10.231.87.2
                        ├── <prefix>-v1 ══ eth0 in namespace <prefix>-worker-1  10.231.87.3
                        └── ...

The root namespace (where the UI is published on loopback and where the shared filesystem is) reaches every host
through the bridge's gateway address, and hosts reach each other across the bridge, as machines on one switch would.
A service in a host listens on that host's address; the filesystem stays shared, as an NFS or ReadWriteMany volume.

Every name carries a prefix derived from ``RUNWAY_HOME`` (``rw`` and six hex digits: interface names are at most 15
characters), and the default subnet's third octet comes from the same hash, so two deployments or two test sessions
on one machine never share a namespace, an interface or an address; an explicit ``subnet`` that overlaps a route of
this machine is refused. ``up`` is idempotent, ``down`` removes every namespace, link and the bridge of this prefix,
``cut``/``restore`` take a host's cable out and put it back (its link down/up: traffic stops both ways).

Needs root (or ``CAP_NET_ADMIN`` and ``CAP_SYS_ADMIN``) and ``ip`` from iproute2 (``make setup`` installs it).
Standard library only: both environments import it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_components.errors import ConfigError, NetworkNamespaceError

# The topology of issue 18: a control host, two workers, three model servers, a load balancer and a client.
DEFAULT_HOSTS = ("control", "worker-1", "worker-2", "serving-1", "serving-2", "serving-3", "lb", "client")
SUBNET_POOL = ipaddress.IPv4Network("10.231.0.0/16")  # default subnets: one /24 of it per RUNWAY_HOME
NAMESPACE_DEVICE = "eth0"  # the host's end of its veth pair, inside its namespace
_HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
LOCK_DIR = Path("/run/lock")  # a tmpfs that only root writes; the lock file is shared by every deployment
_INSTALL = "install iproute2 (`make setup` does: apt-get install iproute2)"


def home_prefix(home: Path) -> str:
    """The short prefix of every name a deployment under ``home`` makes: ``rw`` and six hex digits of its path."""
    return "rw" + hashlib.sha256(str(Path(home).resolve()).encode()).hexdigest()[:6]


def default_subnet(prefix: str) -> ipaddress.IPv4Network:
    """The ``/24`` of ``SUBNET_POOL`` that a prefix's hash picks (the same one at every ``up``)."""
    subnets = list(SUBNET_POOL.subnets(new_prefix=24))
    return subnets[int(prefix[-6:], 16) % len(subnets)]


@dataclass(frozen=True, kw_only=True)
class Host:
    """One planned host: its name, network namespace, address and the root end of its veth pair."""

    name: str
    namespace: str
    address: str
    veth: str


@dataclass(frozen=True, kw_only=True)
class HostStatus:
    """What ``Hosts.status()`` found for one host.

    ``link`` is the root end's state: ``up``, ``cut`` (taken down by ``cut``), ``down`` (no carrier yet) or ``absent``.
    """

    name: str
    namespace: str
    address: str
    exists: bool
    link: str


@dataclass(frozen=True, kw_only=True)
class HostPlan:
    """The named hosts of one deployment, their addresses in ``subnet`` and the bridge that joins them."""

    prefix: str
    subnet: ipaddress.IPv4Network
    names: tuple[str, ...]

    @classmethod
    def for_home(cls, home: Path, *, names: Sequence[str] = DEFAULT_HOSTS, subnet: str | None = None) -> HostPlan:
        """The plan of the deployment under ``home`` (``RUNWAY_HOME``).

        Args:
            home: the deployment's ``RUNWAY_HOME``; its path gives the prefix of every name.
            names: the hosts, in address order (the first gets the subnet's second address).
            subnet: an IPv4 network such as ``10.231.0.0/24``; default: a ``/24`` of ``10.231.0.0/16`` from the prefix.

        Raises:
            ConfigError: a host name is malformed or repeated, or the subnet is malformed or too small.
        """
        prefix = home_prefix(home)
        try:
            network = ipaddress.IPv4Network(subnet) if subnet is not None else default_subnet(prefix)
        except ValueError as bad:
            raise ConfigError(f"hosts subnet {subnet!r}: {bad}; give an IPv4 network such as 10.231.0.0/24") from None
        for name in names:
            if not _HOST_NAME.match(name):
                raise ConfigError(
                    f"host name {name!r}: use lower-case letters, digits and '-', starting with a letter (at most 32)"
                )
        repeated = sorted({name for name in names if list(names).count(name) > 1})
        if repeated:
            raise ConfigError(f"host names must be unique; repeated: {', '.join(repeated)}")
        if not names:
            raise ConfigError("a host plan needs at least one host")
        if len(names) + 1 > network.num_addresses - 2:  # the gateway, and neither network nor broadcast address
            raise ConfigError(
                f"subnet {network} has room for {max(network.num_addresses - 3, 0)} hosts, {len(names)} asked: "
                "give a larger subnet"
            )
        return cls(prefix=prefix, subnet=network, names=tuple(names))

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    @property
    def gateway(self) -> str:
        """The bridge's address in the root namespace: what hosts reach the root namespace on."""
        return str(self.subnet.network_address + 1)

    @property
    def hosts(self) -> tuple[Host, ...]:
        return tuple(
            Host(
                name=name,
                namespace=f"{self.prefix}-{name}",
                address=str(self.subnet.network_address + 2 + index),
                veth=f"{self.prefix}-v{index}",
            )
            for index, name in enumerate(self.names)
        )

    def host(self, name: str) -> Host:
        """The planned host ``name``.

        Raises:
            ConfigError: no such host in the plan.
        """
        for host in self.hosts:
            if host.name == name:
                return host
        raise ConfigError(f"no host {name!r} in this deployment; its hosts: {', '.join(self.names)}")


def find_ip() -> str:
    """The ``ip`` binary of iproute2.

    Raises:
        NetworkNamespaceError: iproute2 is not installed.
    """
    found = shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip") if Path(p).is_file()), None
    )
    if found is None:
        raise NetworkNamespaceError(f"hosts need the `ip` command of iproute2, which is not installed: {_INSTALL}")
    return found


class Hosts:
    """The hosts of a ``HostPlan`` as real network namespaces: make, inspect, enter, cut and remove them.

    Args:
        plan: the hosts to make (``HostPlan.for_home(settings.home)``).
    """

    def __init__(self, plan: HostPlan) -> None:
        self.plan = plan
        self._ip: str | None = None

    def _check_allowed(self) -> str:
        ip = self._ip or find_ip()
        if os.geteuid() != 0:
            raise NetworkNamespaceError(
                "hosts are network namespaces, and making them needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): "
                "run this as root, for example with sudo"
            )
        self._ip = ip
        return ip

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([self._check_allowed(), *args], capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            message = (done.stderr or done.stdout).strip()
            if "Operation not permitted" in message or "Permission denied" in message:
                raise NetworkNamespaceError(
                    f"`ip {' '.join(args)}` was refused ({message}): this kernel or container does not let this "
                    "process make network namespaces or links; run as root on the host, or in a container started "
                    "with CAP_NET_ADMIN and CAP_SYS_ADMIN (docker run --cap-add NET_ADMIN --cap-add SYS_ADMIN)"
                )
            raise NetworkNamespaceError(f"`ip {' '.join(args)}` failed (exit {done.returncode}): {message}")
        return done

    def _json(self, *args: str) -> list[dict[str, Any]]:
        output = self._run("-j", *args).stdout.strip()
        return list(json.loads(output)) if output else []

    def _namespaces(self) -> set[str]:
        lines = self._run("netns", "list").stdout.splitlines()
        return {line.split()[0] for line in lines if line.strip()}

    def _links(self) -> dict[str, dict[str, Any]]:
        return {link["ifname"]: link for link in self._json("link", "show")}

    def _check_subnet_free(self) -> None:
        """Refuse a subnet that a route of the root namespace already covers (another deployment, a real network)."""
        for route in self._json("-4", "route", "show"):
            destination = route.get("dst", "")
            if route.get("dev") == self.plan.bridge or destination in ("default", ""):
                continue
            try:
                taken = ipaddress.IPv4Network(destination, strict=False)
            except ValueError:
                continue
            if taken.overlaps(self.plan.subnet):
                raise ConfigError(
                    f"the hosts' subnet {self.plan.subnet} overlaps {taken}, already routed on {route.get('dev')} "
                    "of this machine: give the plan another subnet (HostPlan.for_home(..., subnet=...))"
                )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the machine's hosts lock: two ``up``/``down`` of one RUNWAY_HOME at once would each make what the
        other is making (``File exists``), and two of different homes could both take one free subnet. One file for
        every deployment (each holds it for well under a second), so none is left behind per prefix."""
        self._check_allowed()
        folder = LOCK_DIR if LOCK_DIR.is_dir() else Path("/tmp")
        with open(folder / "runway-hosts.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield

    def _check_same_subnet(self) -> None:
        """Refuse to change the subnet of hosts that are up: their services listen on the old addresses."""
        for link in self._json("-4", "addr", "show", "dev", self.plan.bridge):
            for address in link.get("addr_info", []):
                network = ipaddress.IPv4Network(f"{address['local']}/{address['prefixlen']}", strict=False)
                if network != self.plan.subnet:
                    raise ConfigError(
                        f"the hosts of this RUNWAY_HOME are up on subnet {network}, not {self.plan.subnet}: "
                        "run down() first to move them to another subnet"
                    )

    def up(self) -> list[HostStatus]:
        """Make the bridge, every host's namespace, veth pair, address and routes; what exists already is kept.

        Returns:
            ``status()`` once every host is up.

        Raises:
            NetworkNamespaceError: not root, no iproute2, or the kernel refuses namespaces or links.
            ConfigError: the subnet overlaps one this machine already routes elsewhere, or the hosts are up on
                another subnet.
        """
        with self._locked():
            self._make()
        return self.status()

    def _make(self) -> None:
        plan = self.plan
        links = self._links()
        if plan.bridge not in links:
            self._check_subnet_free()
            self._run("link", "add", plan.bridge, "type", "bridge")
        else:
            self._check_same_subnet()
        prefix_length = str(plan.subnet.prefixlen)
        self._run("addr", "replace", f"{plan.gateway}/{prefix_length}", "dev", plan.bridge)
        self._run("link", "set", plan.bridge, "up")
        namespaces = self._namespaces()
        for host in plan.hosts:
            if host.namespace not in namespaces:
                self._run("netns", "add", host.namespace)
            if host.veth not in links:
                # Made with its peer already inside the namespace: the host sees one plain `eth0`.
                self._run("link", "add", host.veth, "type", "veth", "peer", "name", NAMESPACE_DEVICE,
                          "netns", host.namespace)  # fmt: skip
            self._run("link", "set", host.veth, "master", plan.bridge, "up")
            inside = ("-n", host.namespace)
            self._run(*inside, "link", "set", "lo", "up")  # services in a host may listen on its own loopback
            self._run(*inside, "addr", "replace", f"{host.address}/{prefix_length}", "dev", NAMESPACE_DEVICE)
            self._run(*inside, "link", "set", NAMESPACE_DEVICE, "up")
            self._run(*inside, "route", "replace", "default", "via", plan.gateway)

    def status(self) -> list[HostStatus]:
        """Each planned host: whether its namespace exists, its address, and its link's state."""
        namespaces = self._namespaces()
        links = self._links()
        found = []
        for host in self.plan.hosts:
            link = links.get(host.veth)
            if link is None:
                state = "absent"
            elif "UP" not in link.get("flags", []):
                state = "cut"
            else:
                state = "up" if link.get("operstate") == "UP" else "down"
            found.append(
                HostStatus(
                    name=host.name,
                    namespace=host.namespace,
                    address=host.address,
                    exists=host.namespace in namespaces,
                    link=state,
                )
            )
        return found

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` inside ``host`` (``ip netns exec``), for a caller's own launcher."""
        return [self._check_allowed(), "netns", "exec", self.plan.host(host).namespace, *argv]

    def exec(self, host: str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` inside ``host`` and wait for it (``subprocess.run``'s keyword arguments apply)."""
        return subprocess.run(self.command(host, argv), **kwargs)  # the caller decides `check`

    def popen(self, host: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside ``host`` (``subprocess.Popen``'s keyword arguments apply); the caller stops it."""
        return subprocess.Popen(self.command(host, argv), **kwargs)

    def pids(self, host: str) -> list[int]:
        """The processes running inside ``host`` (``ip netns pids``; empty when it does not exist)."""
        done = self._run("netns", "pids", self.plan.host(host).namespace, check=False)
        return [int(word) for word in done.stdout.split() if word.isdigit()]

    def cut(self, host: str) -> None:
        """Pull ``host``'s cable: its link goes down, so no traffic reaches it or leaves it until ``restore``."""
        self._run("link", "set", self.plan.host(host).veth, "down")

    def restore(self, host: str) -> None:
        """Plug ``host``'s cable back in (its link up again)."""
        self._run("link", "set", self.plan.host(host).veth, "up")

    def leftovers(self) -> list[str]:
        """Every namespace and link of this plan's prefix that exists now (empty after ``down``)."""
        mine = f"{self.plan.prefix}-"
        return sorted(
            [f"netns {name}" for name in self._namespaces() if name.startswith(mine)]
            + [f"link {name}" for name in self._links() if name.startswith(mine)]
        )

    def down(self) -> None:
        """Remove every namespace and link of this prefix, the bridge last; nothing happens when none exists.

        Processes still running inside a host keep its namespace alive but lose its network; stop them first.
        """
        with self._locked():
            self._remove()

    def _remove(self) -> None:
        mine = f"{self.plan.prefix}-"
        for namespace in sorted(self._namespaces()):
            if namespace.startswith(mine):
                self._run("netns", "delete", namespace)  # takes the namespace's veth end, and so its peer, with it
        for name in sorted(self._links(), key=lambda name: name == self.plan.bridge):
            if name.startswith(mine):
                self._run("link", "delete", name, check=False)  # a veth may vanish with its peer meanwhile
        still = self.leftovers()
        if still:
            raise NetworkNamespaceError(f"`down` could not remove {', '.join(still)}; remove them with `ip` as root")
