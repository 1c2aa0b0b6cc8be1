"""A model store as the Pusher and the rollout leave it: version folders and models.config."""

from __future__ import annotations

from pathlib import Path

from pipeline_components.fleet.store import ModelServing, ModelStore


def model_store(
    root: Path, model: str, versions: tuple[int, ...], labels: dict[str, int], *, served: tuple[int, ...] = ()
) -> ModelStore:
    """``versions`` as folders (the SavedModel's file is all the store looks for), ``labels`` in models.config."""
    store = ModelStore(root)
    for version in versions:
        folder = store.version_path(model, version)
        folder.mkdir(parents=True)
        (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    store.write_config({model: ModelServing(model, served or versions, labels)})
    return store
