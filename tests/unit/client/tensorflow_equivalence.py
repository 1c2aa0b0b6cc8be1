"""Run by the runtime environment's interpreter (test_one_encoder.py): ``serving_protos`` encodes and decodes
tensors and Examples exactly as TensorFlow does, so the model server answers byte for byte as it did with
``tf.make_tensor_proto`` / ``tf.make_ndarray`` and reads every request the same way.

Exits 0 when every case agrees; otherwise prints each disagreement and exits 1.
"""

from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from pipeline_components import serving_protos as sp
from pipeline_components.serving_protos import arrays

ARRAYS = {
    "float32 matrix": np.array([[0.1, 0.9], [0.25, 0.75]], np.float32),
    "float32 one": np.array([0.5], np.float32),
    "float32 scalar": np.float32(2.5),
    "float64": np.array([1.0, 2.0, 3.0]),
    "half": np.array([1.5, -2.25, 65504.0], np.float16),
    "half one": np.array([0.333], np.float16),
    "int64": np.array([[1, -2], [3, 2**62]], np.int64),
    "int32 one": np.array([7], np.int32),
    "int8": np.array([-128, 127], np.int8),
    "uint8": np.array([0, 255, 3], np.uint8),
    "int16": np.array([-3, 30000], np.int16),
    "uint16": np.array([1, 65535], np.uint16),
    "uint32": np.array([1, 2**32 - 1], np.uint32),
    "uint64": np.array([1, 2**64 - 1], np.uint64),
    "bool": np.array([True, False, True]),
    "bytes objects": np.array([b"JFK", b"\x00\xff"], dtype=object),
    "str objects": np.array(["caf\u00e9", "x"], dtype=object),
    "empty": np.zeros((0, 3), np.float32),
}


def check_arrays(failures: list[str]) -> None:
    for name, array in ARRAYS.items():
        ours = arrays.array_to_tensor(array, into=tensor_pb2.TensorProto())
        theirs = tf.make_tensor_proto(array)
        if ours.SerializeToString() != theirs.SerializeToString():
            failures.append(f"array_to_tensor({name}): {ours} != tf.make_tensor_proto: {theirs}")
        back, expected = arrays.tensor_to_array(theirs), tf.make_ndarray(theirs)
        if back.dtype != expected.dtype or back.shape != expected.shape or not np.array_equal(back, expected):
            failures.append(f"tensor_to_array({name}): {back!r} != tf.make_ndarray: {expected!r}")


def check_shorthand_and_lists(failures: list[str]) -> None:
    # TF's fill shorthand (fewer values than the shape holds: the last one repeats) and empty fields (zeros).
    filled = tf.make_tensor_proto([5], dtype=tf.int64, shape=[3])
    if arrays.tensor_to_array(filled).tolist() != tf.make_ndarray(filled).tolist() != sp.tensor_to_list(filled):
        failures.append("fill shorthand decodes differently from tf.make_ndarray")
    empty = tensor_pb2.TensorProto(dtype=1)
    empty.tensor_shape.dim.add().size = 2
    if arrays.tensor_to_array(empty).tolist() != tf.make_ndarray(empty).tolist():
        failures.append("an empty float field does not decode to zeros as tf.make_ndarray does")
    # The list encoder (client, fleet) writes what TF writes for lists of the same dtype, and reads it back.
    for values, dtype in (([[1.5], [2.0]], tf.float32), ([1, 2, 3], tf.int64), ([b"a", b"b"], tf.string)):
        ours = sp.make_tensor_proto(values, dtype=dtype.as_datatype_enum)
        theirs = tf.make_tensor_proto(values, dtype=dtype)
        decoded = tf.make_ndarray(tensor_pb2.TensorProto.FromString(ours.SerializeToString())).tolist()
        if decoded != values or sp.tensor_to_list(theirs) != tf.make_ndarray(theirs).tolist():
            failures.append(f"list encoder disagrees with TensorFlow for {values} as {dtype.name}")


def check_examples(failures: list[str]) -> None:
    row = {"distance": 1617, "carrier": "B6", "visib": 10.0, "known": True, "tags": ["a", "b"]}
    dtypes = {"distance": "DT_FLOAT", "carrier": "DT_STRING", "visib": "DT_FLOAT", "known": "DT_INT64"}
    expected = tf.train.Example(
        features=tf.train.Features(
            feature={
                "distance": tf.train.Feature(float_list=tf.train.FloatList(value=[1617.0])),
                "carrier": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"B6"])),
                "visib": tf.train.Feature(float_list=tf.train.FloatList(value=[10.0])),
                "known": tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
                "tags": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"a", b"b"])),
            }
        )
    )
    ours = tf.train.Example.FromString(sp.make_example(row, dtypes).SerializeToString())
    if ours != expected:
        failures.append(f"make_example: {ours} != {expected}")
    # The JSON a REST client sends for the same row decodes, by JSON types, to the same Example.
    from pipeline_components.serving_protos.examples import json_example

    again = tf.train.Example.FromString(sp.json_to_example(json_example(row, dtypes)).SerializeToString())
    if again != expected:
        failures.append(f"json_to_example(json_example(row)): {again} != {expected}")


def main() -> int:
    failures: list[str] = []
    check_arrays(failures)
    check_shorthand_and_lists(failures)
    check_examples(failures)
    for failure in failures:
        print(failure)
    print(f"{len(failures)} disagreement(s) with TensorFlow")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
