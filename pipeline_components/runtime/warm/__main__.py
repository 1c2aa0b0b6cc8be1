"""``python -m pipeline_components.runtime.warm serve --socket PATH``: started by the orchestrator on demand."""

from __future__ import annotations

import sys

from pipeline_components.runtime.warm.service import main

if __name__ == "__main__":
    sys.exit(main())
