"""Who may reach the model servers' ports: the deployment's NetworkPolicy.

Each serving host gets an nftables table of its own (inside its namespace): its gRPC and REST ports accept
connections from the load balancer, from the hosts that run rollouts (the control host and the worker hosts, whose
Celery tasks drive TF Serving's ``ModelService``) and from this machine (the bridge's gateway: ``runway fleet``
commands, ``deploy up``'s readiness checks), and drop everything else, the client host included. Downstream
applications reach the fleet through the load balancer only, which refuses the admin API
(``ModelService/HandleReloadConfigRequest``) itself; so the admin API is reachable from the control side alone.
Kubernetes does the same with ``infra/k8s/base/serving-network-policy.yaml``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pipeline_components.errors import NetworkNamespaceError

TABLE = "runway"


def find_nft() -> str:
    """The ``nft`` binary.

    Raises:
        NetworkNamespaceError: nftables is not installed.
    """
    binary = shutil.which("nft") or ("/usr/sbin/nft" if Path("/usr/sbin/nft").is_file() else None)
    if binary is None:
        raise NetworkNamespaceError("nft is missing: install nftables (`make setup` does: apt-get install nftables)")
    return binary


def serving_rules(*, ports: Sequence[int], allowed: Sequence[str]) -> str:
    """The ruleset of a serving host: ``ports`` accept new connections from ``allowed`` addresses only.

    It replaces the table if it exists, so applying it again at every ``up`` is harmless."""
    port_set = ", ".join(str(port) for port in ports)
    sources = ", ".join(allowed)
    return f"""table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
  chain input {{
    type filter hook input priority 0; policy accept;
    iif "lo" accept
    ct state established,related accept
    tcp dport {{ {port_set} }} ip saddr {{ {sources} }} accept
    tcp dport {{ {port_set} }} drop
  }}
}}
"""


def apply(enter: Sequence[str], rules: str) -> None:
    """Load ``rules`` inside the host that ``enter`` (``ip netns exec NS``) enters.

    Raises:
        NetworkNamespaceError: nft refused them (its message is included).
    """
    done = subprocess.run([*enter, find_nft(), "-f", "-"], input=rules, capture_output=True, text=True)
    if done.returncode != 0:
        raise NetworkNamespaceError(f"nft refused the serving host's rules: {done.stderr.strip()}\n{rules}")
