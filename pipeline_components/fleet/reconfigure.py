"""Change what every instance of a fleet serves: ``models.config`` first, then the same config on each instance.

TF Serving's ``ModelService/HandleReloadConfigRequest`` replaces a server's whole model list, so every reload sends
the complete file, rendered for the store path each instance sees. The file is written first (an instance that
restarts meanwhile reads the new config), and the file lock is held until every instance answered, so that two
rollouts of different models never reach an instance out of order. Only the orchestrator calls this, on the
instances' own addresses: the load balancer refuses the method (infra/nginx/fleet.conf.template).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from pipeline_components.fleet.instances import Instance, InstanceError
from pipeline_components.fleet.store import ModelServing, ModelStore


def reconfigure(
    store: ModelStore,
    model: str,
    serving: ModelServing,
    *,
    all_instances: list[Instance],
    send_to: Iterable[Instance] | None = None,
    timeout_s: float,
    abandon: Callable[[], Collection[str]] | None = None,
) -> list[str]:
    """Put ``serving`` in ``models.config`` for ``model`` (no versions: the model is removed) and reload it.

    Args:
        store: the model store whose ``models.config`` the fleet reads.
        model: the model to change; the other models of the file are sent unchanged.
        serving: its versions and labels.
        all_instances: every instance of the fleet (their store paths render the file).
        send_to: the instances to reload (default: all of them).
        timeout_s: each reload's deadline.
        abandon: the names of the instances to stop waiting for (asked every half second while reloads run; the
            fleet's readiness fences an instance that stopped answering): their call is cancelled and fails.

    Returns:
        One error line per instance that did not take the config (empty: all did).
    """
    with store.locked():
        models = store.read_config()
        if serving.versions:
            models[model] = serving
        else:
            models.pop(model, None)
        store.write_config(models)
        texts = {
            instance.name: store.render_config(models, store_path=instance.address.store_path)
            for instance in all_instances
        }
        targets = list(send_to if send_to is not None else all_instances)
        return in_parallel(targets, lambda i: i.reload_config(texts[i.name], timeout_s=timeout_s), abandon=abandon)


def in_parallel(
    instances: list[Instance],
    action: Callable[[Instance], Any],
    *,
    abandon: Callable[[], Collection[str]] | None = None,
) -> list[str]:
    """Run ``action`` on every instance at once; one error line per instance that raised.

    With ``abandon``, an instance it names while its call still runs has its channel closed, which ends the call
    at once (gRPC cancels it): a host cut off would otherwise hold the caller until the call's deadline.
    """

    def run(instance: Instance) -> str | None:
        try:
            action(instance)
        except InstanceError as error:
            return str(error)
        except Exception as error:  # a bug or an unexpected answer must still be reported, and rolled back
            return f"{instance.name}: {type(error).__name__}: {error}"
        return None

    with ThreadPoolExecutor(max_workers=max(1, len(instances))) as pool:
        futures = {pool.submit(run, instance): instance for instance in instances}
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.5 if abandon else None)
            if abandon is not None and pending:
                given_up = set(abandon())
                for future in pending:
                    if futures[future].name in given_up:
                        futures[future].close()
        return [error for future in futures if (error := future.result())]
