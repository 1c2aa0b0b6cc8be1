"""The orchestrator side: light modules that DAG files and the CLI import (no TensorFlow, no TFX)."""
