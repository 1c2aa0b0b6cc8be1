"""Training under a configurable tf.distribute strategy (docs/training.md).

- ``settings``: the ``training`` entry of the Trainer's custom_config (light, no TensorFlow);
- ``strategies``: strategy names -> validated settings -> ``tf.distribute`` strategy objects, devices, datasets;
- ``cluster``: local multi-process clusters (multi_worker_mirrored, parameter_server) launched and supervised by
  the Trainer itself;
- ``spec``: the run's spec file that cluster processes read, and the training functions it may name;
- ``worker``: the entry point of one cluster process;
- ``k8s``: the same run rendered as Kubernetes manifests (Indexed Jobs + headless Service).
"""

from __future__ import annotations

from pipeline_components.training.settings import from_custom_config, trainer_training_config

__all__ = ["from_custom_config", "trainer_training_config"]
