"""``python -m pipeline_components.serving --port=8500 --rest_api_port=8501 --model_name=... --model_base_path=...``"""

from __future__ import annotations

import sys

from pipeline_components.serving.flags import parse_command_line


def _main() -> int:
    flags = parse_command_line(sys.argv[1:])
    if isinstance(flags, int):  # help printed, or a bad command line refused: no TensorFlow import needed
        return flags
    from pipeline_components.serving.server import run

    return run(flags)


if __name__ == "__main__":
    sys.exit(_main())
