"""Durable writes: old or new content, never a mix or nothing; data and names flushed to disk."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from pipeline_components import durable


def _fsynced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the path behind every fsync'd descriptor."""
    seen: list[str] = []
    real = os.fsync

    def recording(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(durable.os, "fsync", recording)
    return seen


def test_atomic_write_flushes_file_and_folder_and_leaves_no_temporary(tmp_path: Path, monkeypatch) -> None:
    seen = _fsynced(monkeypatch)
    target = tmp_path / "sub" / "models.config"
    durable.atomic_write(target, "model_config_list {}\n", mode=0o640)
    assert target.read_text() == "model_config_list {}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert list(target.parent.iterdir()) == [target]
    assert str(target.parent) in seen  # the new name is on disk
    assert any(path.startswith(str(target.parent / ".models.config.")) for path in seen)  # the data before it


def test_a_failed_write_keeps_the_old_content(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "summary.json"
    durable.atomic_write(target, b"old")

    def broken_replace(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(durable.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        durable.atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def _staged(root: Path, name: str, marker: str) -> Path:
    folder = root / name
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_text(marker)
    (folder / "variables" / "data").write_text(marker)
    return folder


def test_publish_dir_flushes_the_tree_and_never_overwrites(tmp_path: Path, monkeypatch) -> None:
    seen = _fsynced(monkeypatch)
    staged = _staged(tmp_path, ".staging", "v1")
    target = tmp_path / "7"
    durable.publish_dir(staged, target)
    assert (target / "variables" / "data").read_text() == "v1"
    assert not staged.exists()
    assert {str(staged / "saved_model.pb"), str(staged / "variables"), str(tmp_path)} <= set(seen)
    other = _staged(tmp_path, ".staging2", "v2")
    with pytest.raises(FileExistsError):
        durable.publish_dir(other, target)
    assert (target / "saved_model.pb").read_text() == "v1"
    empty = tmp_path / "8"
    empty.mkdir()  # plain rename(2) would silently replace an empty folder
    with pytest.raises(FileExistsError):
        durable.publish_dir(other, empty)


def test_swap_dir_never_leaves_a_moment_without_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "tflite"
    durable.publish_dir(_staged(tmp_path, ".s0", "0"), target)
    missing: list[int] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            if not (target / "saved_model.pb").exists():
                missing.append(1)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for round_ in range(1, 200):
            durable.swap_dir(_staged(tmp_path, f".s{round_}", str(round_)), target)
    finally:
        done.set()
        thread.join()
    assert missing == []
    assert (target / "saved_model.pb").read_text() == "199"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tflite"]  # every old folder removed


def test_swap_dir_publishes_when_nothing_is_there(tmp_path: Path) -> None:
    target = tmp_path / "span-3"
    durable.swap_dir(_staged(tmp_path, ".span", "x"), target)
    assert (target / "saved_model.pb").read_text() == "x"
