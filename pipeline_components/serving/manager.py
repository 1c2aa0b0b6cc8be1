"""Model lifecycle: versions found by polling base paths, loaded and unloaded the way TF Serving does it.

The semantics follow TF Serving's ``ServerCore`` with its default ``AvailabilityPreservingPolicy``:

- a model's aspired versions come from its base path and its version policy (``version_policy.py``);
- an aspired version is loaded (and warmed up) before any version that is no longer aspired is unloaded, and a
  non-aspired version is unloaded only once an aspired version is available: a version that fails to load never
  takes the place of one that serves; its failure is reported as state END with the error in ``GetModelStatus``;
- a failed version is not retried while it stays aspired (after ``max_num_load_retries`` retries within the load);
- a reload assigns labels only to versions that are available at that moment (``UpdateModelVersionLabelMap`` in
  server_core.cc), otherwise the whole reload is refused with FAILED_PRECONDITION;
- a request without a version gets the newest available version.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pipeline_components.errors import ServingError
from pipeline_components.serving import status
from pipeline_components.serving.model_config import ModelConfig, ModelServerConfig, validate_model_config_list
from pipeline_components.serving.servable import Servable
from pipeline_components.serving.version_policy import aspired_versions, versions_on_disk

log = logging.getLogger(__name__)

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"

Loader = Callable[[str, int, Path], Servable]
LoadListener = Callable[[str, int, Path, bool, float], None]


class ConfigListener(Protocol):
    """Told of each model config: ``check`` may refuse it before anything changes, ``apply`` follows it."""

    def check(self, config: ModelServerConfig) -> None: ...

    def apply(self, config: ModelServerConfig) -> None: ...


@dataclass
class VersionState:
    """What ``GetModelStatus`` reports for one version.

    Attributes:
        state: START, LOADING, AVAILABLE, UNLOADING or END.
        error_code: OK, or the status code of a failed load.
        error_message: the failure, empty when OK.
        servable: the loaded version while AVAILABLE.
        failed: a load failed and the version has stayed aspired since (not retried).
    """

    state: str = START
    error_code: str = status.OK
    error_message: str = ""
    servable: Servable | None = None
    failed: bool = False


@dataclass
class ManagedModel:
    """One model of the config and its versions."""

    config: ModelConfig
    versions: dict[int, VersionState] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadOptions:
    """How versions are loaded.

    Attributes:
        max_num_load_retries: retries after a failed load.
        load_retry_interval_s: wait between retries.
        allow_version_labels_for_unavailable_models: TF Serving's flag of the same name.
    """

    max_num_load_retries: int = 5
    load_retry_interval_s: float = 60.0
    allow_version_labels_for_unavailable_models: bool = False


class ModelManager:
    """The models a server serves, their versions and labels; thread-safe.

    Args:
        loader: loads one version (``Servable.load`` plus warmup in the server); raises ``ServingError``.
        options: retry and label options.
        on_load: called after each load attempt with (model, version, path, succeeded, seconds).
        config_listener: checks each new config with the manager's own checks and follows it once accepted (the
            request log's ``logging_config``).
    """

    def __init__(
        self,
        *,
        loader: Loader,
        options: LoadOptions,
        on_load: LoadListener | None = None,
        config_listener: ConfigListener | None = None,
    ) -> None:
        self._loader = loader
        self._options = options
        self._on_load = on_load
        self._config_listener = config_listener
        self._models: dict[str, ManagedModel] = {}
        self._config: ModelServerConfig | None = None
        self._state_lock = threading.Lock()  # guards _models' contents; never held while loading
        self._ops_lock = threading.Lock()  # serializes polls and reloads
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # --- configuration -------------------------------------------------------------------------------------------

    def reload_config(self, config: ModelServerConfig) -> None:
        """Apply a new model config, as ``HandleReloadConfigRequest`` and a changed config file do.

        New models are polled and loaded before this returns; removed models are unloaded.

        Raises:
            ServingError: INVALID_ARGUMENT for an invalid config, FAILED_PRECONDITION when a label points at a
                version that is not available, or the config listener's refusal; nothing changes then.
        """
        validate_model_config_list(config)
        with self._ops_lock:
            if self._config is not None and self._config == config:
                return
            labels = self._check_labels(config)
            if self._config_listener is not None:
                self._config_listener.check(config)
            with self._state_lock:
                wanted = {model.name: model for model in config.model_config_list.config}
                removed = [name for name in self._models if name not in wanted]
                for name, model_config in wanted.items():
                    managed = self._models.get(name)
                    if managed is None:
                        self._models[name] = ManagedModel(config=model_config, labels=labels.get(name, {}))
                    else:
                        managed.config = model_config
                        managed.labels = labels.get(name, {})
                self._config = config
            if self._config_listener is not None:
                self._config_listener.apply(config)
            for name in removed:
                self._remove_model(name)
            for name in wanted:
                self._poll_model(name)

    def _check_labels(self, config: ModelServerConfig) -> dict[str, dict[str, int]]:
        labels: dict[str, dict[str, int]] = {}
        for model in config.model_config_list.config:
            with self._state_lock:
                managed = self._models.get(model.name)
                states = {v: s.state for v, s in managed.versions.items()} if managed else {}
                current = dict(managed.labels) if managed else {}
            for label, version in model.version_labels.items():
                allowed = False
                if self._options.allow_version_labels_for_unavailable_models:
                    allowed = current.get(label, version) == version
                if not allowed and states.get(version) != AVAILABLE:
                    raise status.failed_precondition(
                        f"Request to assign label to version {version} of model {model.name}, "
                        "which is not currently available for inference"
                    )
                labels.setdefault(model.name, {})[label] = version
        return labels

    def _remove_model(self, name: str) -> None:
        with self._state_lock:
            managed = self._models.pop(name, None)
        if managed is None:
            return
        for version_state in managed.versions.values():
            version_state.servable = None
            version_state.state = END

    # --- polling ---------------------------------------------------------------------------------------------------

    def poll(self) -> None:
        """Look at every model's base path once and load/unload versions accordingly."""
        with self._ops_lock:
            with self._state_lock:
                names = list(self._models)
            for name in names:
                self._poll_model(name)

    def start_polling(self, interval_s: float) -> None:
        """Poll every ``interval_s`` seconds in a daemon thread (TF Serving's ``file_system_poll_wait_seconds``)."""
        if interval_s <= 0 or self._poller is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.poll()
                except Exception:  # a poll must never end the poller
                    log.exception("polling the model base paths failed")

        self._poller = threading.Thread(target=loop, name="version-poller", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()

    def _poll_model(self, name: str) -> None:
        with self._state_lock:
            managed = self._models.get(name)
            if managed is None:
                return
            base_path = Path(managed.config.base_path)
            policy = managed.config.model_version_policy
        on_disk = versions_on_disk(base_path)
        aspired = aspired_versions(policy, on_disk)
        if not on_disk:
            log.warning("No versions of servable %s found under base path %s", name, base_path)
        for version in aspired:  # newest first, one at a time
            with self._state_lock:
                version_state = managed.versions.get(version)
                if version_state is not None and (version_state.state == AVAILABLE or version_state.failed):
                    continue
                version_state = VersionState(state=LOADING)
                managed.versions[version] = version_state
            self._load(managed, name, version, base_path / str(version), version_state)
        with self._state_lock:
            aspired_set = set(aspired)
            for version, version_state in managed.versions.items():
                if version not in aspired_set:
                    version_state.failed = False  # aspired again later: try again
            any_aspired_available = any(
                managed.versions[v].state == AVAILABLE for v in aspired if v in managed.versions
            )
            if any_aspired_available or not aspired:
                for version, version_state in managed.versions.items():
                    if version not in aspired_set and version_state.state == AVAILABLE:
                        log.info("Unloading servable version {name: %s version: %d}", name, version)
                        version_state.state = END
                        version_state.servable = None

    def _load(self, managed: ManagedModel, name: str, version: int, path: Path, version_state: VersionState) -> None:
        attempts = 1 + max(0, self._options.max_num_load_retries)
        error: ServingError | None = None
        for attempt in range(attempts):
            if attempt and self._stop.wait(self._options.load_retry_interval_s):
                break
            started = time.monotonic()
            try:
                servable = self._loader(name, version, path)
            except ServingError as failure:
                error = failure
            except Exception as failure:  # a loader bug must not take the poller down
                error = ServingError(status.UNKNOWN, f"{type(failure).__name__}: {failure}")
            else:
                self._notify(name, version, path, True, time.monotonic() - started)
                with self._state_lock:
                    version_state.servable = servable
                    version_state.state = AVAILABLE
                    version_state.error_code, version_state.error_message = status.OK, ""
                log.info("Successfully loaded servable version {name: %s version: %d}", name, version)
                return
            self._notify(name, version, path, False, time.monotonic() - started)
            log.error("Loading servable {name: %s version: %d} failed: %s", name, version, error.message)
        assert error is not None or self._stop.is_set()
        with self._state_lock:
            version_state.state = END
            version_state.failed = True
            version_state.servable = None
            if error is not None:
                version_state.error_code, version_state.error_message = error.code, error.message

    def _notify(self, name: str, version: int, path: Path, ok: bool, seconds: float) -> None:
        if self._on_load is not None:
            self._on_load(name, version, path, ok, seconds)

    # --- requests --------------------------------------------------------------------------------------------------

    def servable(self, name: str, *, version: int | None = None, label: str | None = None) -> Servable:
        """The version a request names (``ServerCore::GetServableHandle``).

        Args:
            name: the model name.
            version: a specific version.
            label: a version label (exclusive with ``version``).

        Raises:
            ServingError: INVALID_ARGUMENT for an empty name or an unknown label, NOT_FOUND when the model or the
                version is not available.
        """
        if not name:
            raise status.invalid_argument("ModelSpec has no name specified.")
        with self._state_lock:
            managed = self._models.get(name)
            if label is not None:
                labels = managed.labels if managed else {}
                if label not in labels:
                    raise status.invalid_argument(f"Unrecognized servable version label: {label}")
                version = labels[label]
            if version is not None:
                state = managed.versions.get(version) if managed else None
                if state is None or state.state != AVAILABLE or state.servable is None:
                    raise status.not_found(f"Servable not found for request: Specific({name}, {version})")
                return state.servable
            available = [
                (v, s.servable) for v, s in (managed.versions.items() if managed else []) if s.state == AVAILABLE
            ]
            if not available:
                raise status.not_found(f"Servable not found for request: Latest({name})")
            servable = max(available, key=lambda item: item[0])[1]
            assert servable is not None
            return servable

    def version_states(self, name: str, version: int | None = None) -> list[tuple[int, VersionState]]:
        """Version states of a model, newest first (``GetModelStatusImpl``).

        Raises:
            ServingError: NOT_FOUND for an unknown model or version.
        """
        with self._state_lock:
            managed = self._models.get(name)
            versions = dict(managed.versions) if managed else {}
        if version is not None:
            if version not in versions:
                raise status.not_found(f"Could not find version {version} of model {name}")
            return [(version, versions[version])]
        if not versions:
            raise status.not_found(f"Could not find any versions of model {name}")
        return sorted(versions.items(), reverse=True)

    def available(self) -> list[Servable]:
        """Every available version of every model."""
        with self._state_lock:
            return [
                s.servable
                for managed in self._models.values()
                for s in managed.versions.values()
                if s.state == AVAILABLE and s.servable is not None
            ]

    def config(self) -> ModelServerConfig | None:
        """The config in force."""
        with self._state_lock:
            return self._config
