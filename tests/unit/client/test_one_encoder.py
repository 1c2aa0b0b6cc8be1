"""One encoder of TF Serving tensors and tf.Examples (``serving_protos``), used by the client, the fleet and the
model server: no other module of theirs writes a tensor's or an Example's value fields, and the encoder agrees
with TensorFlow byte for byte (checked in the runtime environment, which has TensorFlow)."""

from __future__ import annotations

import io
import subprocess
import tokenize
from pathlib import Path

import pytest

from pipeline_components.settings import CHECKOUT, Settings
from tests.helpers import missing

PACKAGE = CHECKOUT / "pipeline_components"
# The value fields of tensorflow.TensorProto and tensorflow.Feature, and TensorFlow's own converters: whoever
# touches them is encoding tensors or Examples.
ENCODING_NAMES = frozenset({
    "float_val", "double_val", "int_val", "int64_val", "string_val", "bool_val", "half_val", "uint32_val",
    "uint64_val", "tensor_content", "float_list", "int64_list", "bytes_list", "make_ndarray",
})  # fmt: skip


def names_in_code(path: Path) -> set[str]:
    """The identifiers of a module's code (not its strings or comments), plus ``tf.make_tensor_proto`` calls."""
    tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text()).readline))
    names = {token.string for token in tokens if token.type == tokenize.NAME}
    for first, dot, name in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if (first.string, dot.string, name.string) == ("tf", ".", "make_tensor_proto"):
            names.add("tf.make_tensor_proto")
    return names & (ENCODING_NAMES | {"tf.make_tensor_proto"})


@pytest.mark.parametrize("area", ["client", "fleet", "serving"])
def test_the_client_the_fleet_and_the_server_have_no_encoder_of_their_own(area: str) -> None:
    found = {
        str(path.relative_to(CHECKOUT)): sorted(names)
        for path in sorted((PACKAGE / area).rglob("*.py"))
        if (names := names_in_code(path))
    }
    assert found == {}, f"encode tensors and Examples with pipeline_components.serving_protos instead: {found}"


@pytest.mark.runtime
def test_the_encoder_agrees_with_tensorflow_byte_for_byte() -> None:
    python = Settings.from_env().runtime_python
    if not python.exists():
        missing(f"the runtime environment is not installed ({python}): run `make setup`")
    script = Path(__file__).with_name("tensorflow_equivalence.py")
    result = subprocess.run(
        [str(python), str(script)], cwd=CHECKOUT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "0 disagreement(s) with TensorFlow" in result.stdout
