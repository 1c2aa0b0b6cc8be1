"""Write tiny SavedModels for the fleet tests (runs in the runtime environment).

    python tests/fleet/tiny_models.py OUT_DIR

OUT_DIR/good_a, good_b: ``y = w * x + n`` (x float32, n int64), with verification samples of their own;
OUT_DIR/differs: weights unlike the samples stored with it (what a serving skew looks like);
OUT_DIR/corrupt: good_b with its variables truncated (no server can load it).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import tensorflow as tf

from pipeline_components.components.pusher.verification import compute_samples, write_samples

ROWS = [{"x": float(i) / 4.0, "n": i} for i in range(8)]


class Tiny(tf.Module):
    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = tf.Variable(w, dtype=tf.float32)

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.float32, name="x"), tf.TensorSpec([None], tf.int64, name="n")]
    )
    def serve(self, x: tf.Tensor, n: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": self.w * x + tf.cast(n, tf.float32)}


def save(path: Path, w: float) -> Path:
    module = Tiny(w)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, w in (("good_a", 2.0), ("good_b", 3.0)):
        write_samples(save(out / name, w), compute_samples(out / name, ROWS))
    # Stored samples say w=3 (what was evaluated), the SavedModel computes w=5.
    save(out / "differs", 5.0)
    write_samples(out / "differs", compute_samples(out / "good_b", ROWS))
    shutil.copytree(out / "good_b", out / "corrupt")
    for data in (out / "corrupt" / "variables").glob("variables.data-*"):
        data.write_bytes(b"")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
