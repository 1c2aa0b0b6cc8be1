"""Is the service's preloaded code still the project's code? (A child would otherwise run an old version.)"""

from __future__ import annotations

import contextlib
import os
import sys


def project_sources() -> dict[str, float]:
    """Modification times of the loaded modules that are not installed libraries (the project's own code)."""
    libraries = tuple({os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})
    sources: dict[str, float] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py") or os.path.realpath(path).startswith(libraries):
            continue
        with contextlib.suppress(OSError):
            sources[path] = os.stat(path).st_mtime
    return sources


def changed_sources(sources: dict[str, float]) -> list[str]:
    """File names among ``sources`` changed or removed since they were recorded."""
    changed = []
    for path, mtime in sources.items():
        try:
            if os.stat(path).st_mtime != mtime:
                changed.append(os.path.basename(path))
        except OSError:
            changed.append(os.path.basename(path))
    return changed
