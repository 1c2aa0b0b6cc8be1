"""Durable writes: a reader never sees half a file or half a folder, and what was made visible survives a crash.

Every file or folder that another process reads while runway may be writing it goes through this module: model
versions and ``models.config`` (model servers poll them), run summaries and report pages (people and Airflow read
them), span folders (ExampleGen globs them), published TFLite folders. The recipe is the classic one:

1. write into a temporary name in the same folder (same filesystem, so the final step is a rename);
2. ``fsync`` the data (file, or every file and folder of a tree), so the rename cannot reach the disk before it;
3. rename into place: ``rename(2)`` for a file; for a folder, ``renameat2(RENAME_NOREPLACE)`` when nothing is
   there yet and ``renameat2(RENAME_EXCHANGE)`` to swap a new folder for an old one in one step;
4. ``fsync`` the parent folder, so the new name itself is on disk.

Where ``renameat2`` is missing (not Linux, or a filesystem without it, such as NFS before 4.x servers that support
it), folder swaps fall back to two renames, the only way left, and say so once in the log.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}
_warned_fallback = False


def fsync_dir(path: Path | str) -> None:
    """Flush a folder's entries (names created, renamed or removed in it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path | str, data: str | bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` so that readers see the old content or the new, never a mix, even after a crash.

    Args:
        path: the file to write; its folder is created if missing.
        data: text (written as UTF-8) or bytes.
        mode: permission bits of the new file.

    Returns:
        ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return target


def fsync_tree(root: Path | str) -> None:
    """Flush every file and folder below ``root`` (``root`` included) to disk, deepest first."""
    for folder, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            file_path = os.path.join(folder, name)
            if os.path.islink(file_path):
                continue
            fd = os.open(file_path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(folder)


def _renameat2(source: Path, target: Path, flags: int) -> bool:
    """``renameat2(2)``; False where the platform or the filesystem does not support ``flags``."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    function = getattr(libc, "renameat2", None)
    if function is None:
        return False
    result = function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), ctypes.c_uint(flags))
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(source), None, str(target))


def _fallback(what: str) -> None:
    global _warned_fallback
    if not _warned_fallback:
        log.warning("renameat2 is not available here: %s uses two renames (a moment with nothing in place)", what)
        _warned_fallback = True


def publish_dir(staged: Path | str, target: Path | str) -> Path:
    """Make the complete folder ``staged`` visible as ``target`` in one step; ``target`` must not exist.

    The files of ``staged`` are flushed first, so the name never points at data that is not on disk.

    Raises:
        FileExistsError: ``target`` exists (a folder is never overwritten by this call; see ``swap_dir``).
    """
    staged, target = Path(staged), Path(target)
    fsync_tree(staged)
    if not _renameat2(staged, target, _RENAME_NOREPLACE):
        _fallback("publishing a folder")
        if target.exists():
            raise FileExistsError(errno.EEXIST, "folder exists already", str(target))
        os.rename(staged, target)
    fsync_dir(target.parent)
    return target


def swap_dir(staged: Path | str, target: Path | str) -> Path:
    """Put the complete folder ``staged`` in place of ``target`` in one step, then delete the old folder.

    Readers see the old folder or the new one at every moment (``RENAME_EXCHANGE``). When ``target`` does not
    exist this is ``publish_dir``.
    """
    staged, target = Path(staged), Path(target)
    if not target.exists():
        return publish_dir(staged, target)
    fsync_tree(staged)
    if _renameat2(staged, target, _RENAME_EXCHANGE):
        old = staged  # after the exchange, the staging name holds the previous folder
    else:
        _fallback("replacing a folder")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(target, old)
        os.rename(staged, target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)
    return target
