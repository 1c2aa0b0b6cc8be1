"""The push stage: TFX's Pusher with both blessings required, published atomically with verification samples.

- ``component.py``: ``Pusher`` (TFX's, with the Evaluator's and the InfraValidator's blessings required inputs);
- ``rules.py``: when a run pushes nothing (``dry_run``; a span already served, unless ``repush``);
- ``staging.py``: one push at a time per model, into a staging folder, published with one no-replace rename;
- ``verification.py``: the real rows and the exported model's answers stored with each version for the rollout.

``runtime/node.py`` runs the Pusher like any node and asks this stage for the two things only a push needs:
``rules.skip_reason`` before it, ``staging.launch_pusher`` around it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline_components.components.pusher.component import Pusher

__all__ = ["Pusher"]


def __getattr__(name: str) -> object:
    # TFX's component classes cost seconds of imports: loaded on first use, so that what needs only the
    # verification samples (the fleet tests' tiny models) does not pay for them.
    if name == "Pusher":
        from pipeline_components.components.pusher.component import Pusher

        return Pusher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
