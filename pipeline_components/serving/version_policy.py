"""Which versions on disk a model should serve: TF Serving's ``ServableVersionPolicy`` (latest, all, specific)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeAlias

from tensorflow_serving.config import file_system_storage_path_source_pb2

ServableVersionPolicy: TypeAlias = (
    file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy
)


def versions_on_disk(base_path: Path) -> list[int]:
    """Version numbers under a base path: the child directories whose names are non-negative integers.

    TF Serving ignores everything else (temporary upload folders, files); a missing base path has no versions.
    """
    try:
        children = list(base_path.iterdir())
    except OSError:
        return []
    return sorted(int(child.name) for child in children if child.name.isdigit() and child.is_dir())


def aspired_versions(policy: ServableVersionPolicy, on_disk: list[int]) -> list[int]:
    """The versions to serve under a policy, highest first.

    Args:
        policy: the model's ``model_version_policy``; unset means ``latest { num_versions: 1 }``.
        on_disk: the versions found under the base path.

    Returns:
        The aspired versions, sorted from highest to lowest.
    """
    newest_first = sorted(on_disk, reverse=True)
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return newest_first
    if choice == "specific":
        wanted = set(policy.specific.versions)
        return [version for version in newest_first if version in wanted]
    num_versions = policy.latest.num_versions if choice == "latest" and policy.latest.num_versions > 0 else 1
    return newest_first[:num_versions]
