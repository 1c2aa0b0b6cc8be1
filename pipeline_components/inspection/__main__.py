"""Old path of ``python -m pipeline_components.components.model_inspector`` (see ``__init__.py``)."""

from __future__ import annotations

import sys

from pipeline_components.components.model_inspector.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
