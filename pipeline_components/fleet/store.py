"""The model store: ``<store>/<model>/<version>/`` folders written atomically, and ``<store>/models.config``.

``models.config`` is the text ``ModelServerConfig`` every instance of the fleet reads (``--model_config_file``): one
``model_config_list`` entry per model, with ``model_version_policy { specific { versions: ... } }`` (exactly the
versions the fleet serves), ``version_labels`` (``stable``, ``canary``) and, when the pipeline asks for request
logging, ``logging_config`` (``RequestLogging``). Only the rollout changes it, under a
file lock, and always by writing a temporary file and renaming it over the old one, so an instance that re-reads it
(``--model_config_file_poll_wait_seconds``) or restarts never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline_components.durable import atomic_write, fsync_dir, publish_dir
from pipeline_components.errors import RunwayError
from pipeline_components.fleet import CANARY_LABEL, STABLE_LABEL, VERIFICATION_FILE, model_config_path, protos

SAVED_MODEL = "saved_model.pb"


class StoreError(RunwayError):
    """The model store or its models.config is missing something or is inconsistent."""


@dataclass(frozen=True, kw_only=True)
class RequestLogging:
    """A model's request logging, as TF Serving's ``logging_config`` says it (runway-model-server fleets only).

    Attributes:
        filename_prefix: where each instance writes, as the instances see it (``<prefix>-<time>-...tfrecord``).
        sampling_rate: the share of requests logged (1.0 all, 0.0 none).
    """

    filename_prefix: str
    sampling_rate: float


@dataclass(frozen=True)
class ModelServing:
    """What the fleet serves of one model: the versions loaded, the labels, and the request logging (if any)."""

    name: str
    versions: tuple[int, ...] = ()
    labels: dict[str, int] = field(default_factory=dict)
    logging: RequestLogging | None = None

    @property
    def stable(self) -> int | None:
        return self.labels.get(STABLE_LABEL)

    @property
    def canary(self) -> int | None:
        return self.labels.get(CANARY_LABEL)

    def with_versions(self, versions: set[int] | list[int] | tuple[int, ...]) -> ModelServing:
        return replace(self, versions=tuple(sorted(set(versions))))

    def with_labels(self, **labels: int | None) -> ModelServing:
        merged = dict(self.labels)
        for key, value in labels.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return replace(self, labels=merged)


def is_version_dir(path: Path) -> bool:
    return path.name.isdigit() and (path / SAVED_MODEL).is_file()


class ModelStore:
    """One model store (``RUNWAY_MODEL_STORE``) as the orchestrator sees it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def config_path(self) -> Path:
        return model_config_path(self.root)

    def base_path(self, model: str) -> Path:
        return self.root / model

    def version_path(self, model: str, version: int) -> Path:
        return self.base_path(model) / str(version)

    def versions_on_disk(self, model: str) -> list[int]:
        """Complete versions (a numeric folder with its ``saved_model.pb``), oldest first."""
        base = self.base_path(model)
        if not base.is_dir():
            return []
        return sorted(int(p.name) for p in base.iterdir() if is_version_dir(p))

    def verification_path(self, model: str, version: int) -> Path:
        return self.version_path(model, version) / VERIFICATION_FILE

    # -- writing versions -------------------------------------------------------------------------------------------

    def write_version(self, model: str, version: int, source: Path) -> Path:
        """Copy an exported SavedModel folder in as ``version``, atomically.

        The copy goes to a hidden temporary folder beside the version (same filesystem), is flushed to disk, then
        one rename makes it visible (``durable.publish_dir``): a server polling the base path sees either nothing
        or the whole version, also after a crash.

        Raises:
            StoreError: the version exists already, or ``source`` is not a SavedModel folder.
        """
        return publish_version(Path(source), self.version_path(model, version))

    # -- models.config ----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialize read-modify-write of ``models.config`` (rollouts of different models share the file)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".models.config.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def read_config(self) -> dict[str, ModelServing]:
        """Every model of ``models.config`` (an empty mapping when there is no file yet)."""
        if not self.config_path.is_file():
            return {}
        try:
            config = protos.model_server_config(self.config_path.read_text())
        except Exception as error:  # text_format.ParseError
            raise StoreError(f"{self.config_path} is not a valid text ModelServerConfig: {error}") from None
        models: dict[str, ModelServing] = {}
        for entry in config.model_config_list.config:
            policy = entry.model_version_policy
            versions = tuple(sorted(policy.specific.versions)) if policy.HasField("specific") else ()
            logging = None
            if entry.HasField("logging_config"):
                logging = RequestLogging(
                    filename_prefix=entry.logging_config.log_collector_config.filename_prefix,
                    sampling_rate=entry.logging_config.sampling_config.sampling_rate,
                )
            models[entry.name] = ModelServing(entry.name, versions, dict(entry.version_labels), logging)
        return models

    def serving(self, model: str) -> ModelServing:
        return self.read_config().get(model, ModelServing(model))

    def render_config(self, models: dict[str, ModelServing], *, store_path: str | None = None) -> str:
        """The text ``ModelServerConfig`` for ``models``, with base paths under ``store_path`` (default: the
        store's own path; an instance that mounts the store elsewhere gets its own)."""
        config = protos.model_server_config()
        config.model_config_list.SetInParent()  # an empty list is still a model_config_list
        root = store_path or str(self.root)
        for name in sorted(models):
            serving = models[name]
            entry = config.model_config_list.config.add()
            entry.name = name
            entry.base_path = f"{root.rstrip('/')}/{name}"
            entry.model_platform = "tensorflow"
            entry.model_version_policy.specific.versions.extend(serving.versions)
            for label, version in sorted(serving.labels.items()):
                entry.version_labels[label] = version
            if serving.logging is not None:
                collector = entry.logging_config.log_collector_config
                collector.type = "tfrecord"
                collector.filename_prefix = serving.logging.filename_prefix
                entry.logging_config.sampling_config.sampling_rate = serving.logging.sampling_rate
        return protos.to_text(config)

    def write_config(self, models: dict[str, ModelServing]) -> Path:
        """Write ``models.config`` durably (``durable.atomic_write``: flushed temporary file, rename, folder flush)."""
        for serving in models.values():
            for label, version in serving.labels.items():
                if version not in serving.versions:
                    raise StoreError(
                        f"model {serving.name}: label {label} names version {version}, which is not among the "
                        f"served versions {list(serving.versions)}"
                    )
        atomic_write(self.config_path, self.render_config(models))
        return self.config_path

    # -- retention --------------------------------------------------------------------------------------------------

    def retained(self, model: str, keep: int, serving: ModelServing) -> set[int]:
        """The versions to keep on disk: the ``keep`` newest, plus whatever is labelled or served."""
        on_disk = self.versions_on_disk(model)
        keep_set = set(on_disk[-keep:]) if keep > 0 else set()
        return keep_set | set(serving.labels.values()) | set(serving.versions)

    def prune(self, model: str, keep: int, serving: ModelServing) -> list[int]:
        """Delete version folders beyond retention; never a labelled or served one. Returns the deleted versions."""
        keep_set = self.retained(model, keep, serving)
        deleted = []
        for version in self.versions_on_disk(model):
            if version in keep_set:
                continue
            path = self.version_path(model, version)
            # Rename out of the base path first: a server never sees a half-deleted version.
            trash = path.with_name(f".deleting-{version}-{os.getpid()}")
            path.rename(trash)
            fsync_dir(path.parent)
            shutil.rmtree(trash, ignore_errors=True)
            deleted.append(version)
        return deleted


def publish_version(source: Path, target: Path) -> Path:
    """Copy the SavedModel folder ``source`` to the version folder ``target`` atomically (see ``write_version``).

    Raises:
        StoreError: ``source`` is not a SavedModel folder, or ``target`` exists already.
    """
    if not (source / SAVED_MODEL).is_file():
        raise StoreError(f"{source} is not a SavedModel folder (no {SAVED_MODEL})")
    if target.exists():
        raise StoreError(f"version folder {target} exists already; versions are never overwritten")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".staging-{target.name}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(source, staging)
        # publish_dir flushes every file and folder of the copy before the one rename that makes it visible,
        # and refuses to replace a version that appeared meanwhile (RENAME_NOREPLACE).
        publish_dir(staging, target)
    except FileExistsError:
        raise StoreError(f"version folder {target} exists already; versions are never overwritten") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
