"""Write tiny SavedModels for the fleet tests (runs in the runtime environment).

    python tests/fleet/tiny_models.py OUT_DIR

OUT_DIR/good_a, good_b: ``y = w * x + n`` (x float32, n int64), with verification samples of their own;
OUT_DIR/differs: weights unlike the samples stored with it (what a serving skew looks like);
OUT_DIR/corrupt: good_b with its variables truncated (no server can load it);
OUT_DIR/flights_shaped: the flights model's serving_default inputs, a made-up answer (replaying real flights);
OUT_DIR/flights_{good,slow,failing,shifted}: candidates to it for the canary analysis (tests/fleet/test_canary.py),
real SavedModels: one that answers nearly alike, one with a heavier graph (same answers, slower), one that fails
on long flights (an assertion in the graph: TF Serving answers INVALID_ARGUMENT), one whose answers are shifted.
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


# The flights pipeline's serving_default inputs (configs/flights.yaml, serving.contract), one value per example.
FLIGHTS_INPUTS = {
    **dict.fromkeys(("carrier", "origin", "dest", "month_name"), tf.string),
    **dict.fromkeys(("distance", "temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib"), tf.float32),
    **dict.fromkeys(
        ("day", "day_of_week", "sched_dep_hour", "sched_arr_hour", "plane_year", "plane_seats", "weather_known",
         "plane_known"),
        tf.int64,
    ),
}  # fmt: skip


class TinyFlights(tf.Module):
    """Flights-shaped: takes a flight's raw features as clients send them, answers ``probabilities`` (batch, 1)."""

    def __init__(self, kind: str = "shaped") -> None:
        super().__init__()
        self.kind = kind
        # The slow candidate's extra work: 6,000 chained small matrix products (about 100 ms on one core; small, so
        # they keep to one thread, as a deep sequential graph does), whose result is multiplied by zero.
        self.weights = tf.Variable(tf.random.stateless_normal([64, 64], seed=[1, 2]) / 8.0)

    @tf.function
    def serve(self, **features: tf.Tensor) -> dict[str, tf.Tensor]:
        distance = features["distance"]
        if self.kind == "failing":  # long flights (over 2,000 miles) fail, as a model fed an unseen range might
            tf.debugging.assert_less(distance, 2000.0, message="distance out of the trained range")
        late = tf.sigmoid((distance - (980.0 if self.kind == "good" else 1000.0)) / 500.0)
        if self.kind == "shifted":  # answers moved up, as after a unit change upstream of the model
            late = tf.minimum(late + 0.3, 1.0)
        if self.kind == "slow":
            _, work = tf.while_loop(
                lambda i, _: i < 6000,
                lambda i, work: (i + 1, tf.tanh(tf.matmul(work, self.weights))),
                (tf.constant(0), tf.ones([64, 64])),
                parallel_iterations=1,
            )
            late += 0.0 * tf.reduce_sum(work)
        return {"probabilities": tf.expand_dims(late, 1)}


def save_flights_shaped(path: Path, kind: str = "shaped") -> Path:
    module = TinyFlights(kind)
    specs = {name: tf.TensorSpec([None], dtype, name=name) for name, dtype in FLIGHTS_INPUTS.items()}
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve.get_concrete_function(**specs)})
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
    save_flights_shaped(out / "flights_shaped")
    for kind in ("good", "slow", "failing", "shifted"):
        save_flights_shaped(out / f"flights_{kind}", kind)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
