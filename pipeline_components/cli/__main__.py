"""``python -m pipeline_components.cli``: the same as the ``runway`` command."""

from __future__ import annotations

import sys

from pipeline_components.cli.entry import main

sys.exit(main())
