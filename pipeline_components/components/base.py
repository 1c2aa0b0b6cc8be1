"""What every runway component shares: its spec and executor named in its class line, its outputs made from the spec.

    class InfraValidator(RunwayComponent, spec=InfraValidatorSpec, executor=Executor):
        def __init__(self, *, model: Any, ...) -> None:
            self._build(model=model, ...)

``spec`` (inputs, outputs, execution parameters) and ``executor`` become TFX's ``SPEC_CLASS`` and
``EXECUTOR_SPEC`` (a ``BeamExecutorSpec`` for a Beam executor, so that the pipeline's ``beam_pipeline_args`` reach
it); the typed, keyword-only ``__init__`` hands what it was given to ``_build``, which creates one
empty channel per declared output, as TFX's own components do one by one.
"""

from __future__ import annotations

from typing import Any

from tfx.dsl.components.base import base_beam_executor, base_component, base_executor, executor_spec
from tfx.types import channel_utils, component_spec


class RunwayComponent(base_component.BaseComponent):
    """Base of runway's TFX components (see the module docstring)."""

    def __init_subclass__(
        cls,
        *,
        spec: type[component_spec.ComponentSpec],
        executor: type[base_executor.BaseExecutor],
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.SPEC_CLASS = spec
        beam = issubclass(executor, base_beam_executor.BaseBeamExecutor)
        cls.EXECUTOR_SPEC = (executor_spec.BeamExecutorSpec if beam else executor_spec.ExecutorClassSpec)(executor)

    def _build(self, **given: Any) -> None:
        """Initialise the component with ``given`` inputs and parameters, and a fresh channel per output."""
        outputs = {key: channel_utils.as_channel([spec.type()]) for key, spec in self.SPEC_CLASS.OUTPUTS.items()}
        base_component.BaseComponent.__init__(self, spec=self.SPEC_CLASS(**given, **outputs))
