"""Which host a process of the deployment runs on, for Airflow and for the logs.

Hosts that are network namespaces of one machine share its host name, so Airflow's default ``socket.getfqdn``
would record the same name for every worker. The deployment gives each process its host's name in ``RUNWAY_HOST``
and its address in ``RUNWAY_HOST_ADDRESS``; Airflow records ``hostname()`` (``[core] hostname_callable``) on every
task instance it runs, so the UI and the REST API say which worker host ran each task.
"""

from __future__ import annotations

import os
import socket

HOST_ENV = "RUNWAY_HOST"
ADDRESS_ENV = "RUNWAY_HOST_ADDRESS"


def hostname() -> str:
    """``worker-1`` in a deployment's process; the machine's name elsewhere."""
    return os.environ.get(HOST_ENV) or socket.getfqdn()


def describe() -> str:
    """``worker-1 (10.231.107.3)`` in a deployment's process, else the machine's name: for log lines."""
    host = os.environ.get(HOST_ENV)
    if not host:
        return socket.getfqdn()
    address = os.environ.get(ADDRESS_ENV)
    return f"{host} ({address})" if address else host
