"""End-to-end runs start a warm runtime per test home (docs/warm-runtime.md): let idle ones stop soon after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _short_lived_warm_runtimes() -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    patch.setenv("RUNWAY_WARM_IDLE_TIMEOUT", "120")
    yield
    patch.undo()
