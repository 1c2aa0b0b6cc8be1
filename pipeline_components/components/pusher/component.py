"""TFX's Pusher with both blessings REQUIRED: no push without the Evaluator's and the InfraValidator's blessing.

TFX's ``PusherSpec`` declares ``model_blessing`` and ``infra_blessing`` optional, and its executor checks a
blessing only if one arrived: a pipeline where either is missing would push unchecked. This spec makes both
required inputs (``min_count`` 1 in the compiled IR), so TFX's launcher refuses to run the Pusher without them,
and TFX's executor then checks that each carries ``blessed == 1``. The class keeps TFX's name ``Pusher`` and its
executor, so the run parameters, figures and push mechanics that key on the component name apply unchanged.
"""

from __future__ import annotations

from typing import Any

from tfx.components.pusher import component as tfx_pusher
from tfx.dsl.components.base import base_component
from tfx.types import channel, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils


class BlessedPusherSpec(standard_component_specs.PusherSpec):
    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        standard_component_specs.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        standard_component_specs.MODEL_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
        standard_component_specs.INFRA_BLESSING_KEY: ChannelParameter(type=standard_artifacts.InfraBlessing),
    }


class Pusher(tfx_pusher.Pusher):
    """``tfx.components.Pusher`` that requires ``model``, ``model_blessing`` and ``infra_blessing``."""

    SPEC_CLASS = BlessedPusherSpec

    def __init__(
        self,
        *,
        model: Any,
        model_blessing: Any,
        infra_blessing: Any,
        push_destination: Any,
        custom_config: dict[str, Any] | None = None,
    ) -> None:
        spec = BlessedPusherSpec(
            model=model,
            model_blessing=model_blessing,
            infra_blessing=infra_blessing,
            push_destination=push_destination,
            custom_config=json_utils.dumps(custom_config),
            pushed_model=channel.Channel(type=standard_artifacts.PushedModel),
        )
        base_component.BaseComponent.__init__(self, spec=spec)
