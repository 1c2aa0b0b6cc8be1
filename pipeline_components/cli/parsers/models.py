"""Parsers of ``runway model inspect`` and ``runway train manifests``."""

from __future__ import annotations

from typing import Any

from pipeline_components.cli.commands.models import cmd_model_inspect, cmd_train_manifests
from pipeline_components.cli.parsers.command import add_command
from pipeline_components.config import STRATEGIES


def add_parsers(sub: Any) -> None:
    """Register ``model`` and ``train`` on the ``runway`` subparsers."""
    model = add_command(
        sub,
        "model",
        help="look inside SavedModels: signatures, inputs/outputs, variables, ops (docs/models.md)",
        description="Look inside SavedModels (docs/models.md).",
    )
    model_sub = model.add_subparsers(dest="model_command", required=True)
    inspect = add_command(
        model_sub,
        "inspect",
        help="everything `saved_model_cli show --all` shows, plus variables, assets, size, ops, TF version",
        description="""\
            Inspect a SavedModel without running it: tag-sets, each signature's method name, inputs and outputs
            (dtype, shape, tensor name) as `saved_model_cli show --all` prints them, plus what an operator needs:
            variable count and bytes, assets (and assets.extra: the warmup requests), size on disk, the ops the
            graph uses, the TensorFlow version that wrote it. The pipeline's ModelInspector node writes the same
            report for every candidate.

            PATH is a version folder (<store>/<model>/<version>), a model artifact (its Format-Serving/), or a
            model base path (<store>/<model>: the version served now, the `stable` one if the fleet labels it).

            Examples:
              runway model inspect var/models/flights_delay               the version served now, as Markdown
              runway model inspect var/models/flights_delay/1795299581 --json
              runway model inspect NEW --compare-with var/models/flights_delay
                  list the differences of the signatures; exit status 2 if any would break clients""",
    )
    inspect.add_argument("path", help="SavedModel folder, model artifact folder, or model base path")
    inspect.add_argument("--json", action="store_true", help="print the full report as JSON")
    inspect.add_argument("--compare-with", metavar="PATH", help="the served model to check compatibility against")
    inspect.add_argument("--html", metavar="FILE", help="also write the report as an HTML page")
    inspect.set_defaults(func=cmd_model_inspect)

    train = add_command(
        sub,
        "train",
        help="distributed training on Kubernetes: render a run's manifests",
        description="Training under a tf.distribute strategy (docs/training.md). Locally the Trainer node runs\n"
        "every strategy itself; on Kubernetes, `runway train manifests` renders the same run as manifests.",
    )
    train_sub = train.add_subparsers(dest="train_command", required=True, metavar="ACTION")
    manifests = add_command(
        train_sub,
        "manifests",
        help="render Indexed Jobs (one per role) + a headless Service, or a JobSet",
        description="""\
            Render a multi_worker_mirrored or parameter_server run of PIPELINE as Kubernetes manifests:
            one Indexed Job per role (worker; or chief, worker, ps) and a headless Service that gives each pod
            a stable name; each pod composes its TF_CONFIG from the cluster, its role and its completion index.
            Pods run the pipeline image (training.cluster.image), mount the claim training.cluster.data_claim at
            /var/lib/runway and read the run's spec written by the Trainer (--spec).

            Apply:   runway train manifests flights --strategy multi_worker_mirrored -o k8s-train/
                     kubectl apply -f k8s-train/
            Follow:  kubectl -n runway get pods -l runway.dev/training=flights-train
            Remove:  kubectl -n runway delete job,service -l runway.dev/training=flights-train""",
    )
    manifests.add_argument("pipeline")
    manifests.add_argument(
        "--strategy",
        choices=[s for s in STRATEGIES if s in ("multi_worker_mirrored", "parameter_server")],
        help="default: the configuration's training.strategy",
    )
    manifests.add_argument("--workers", type=int, help="default: training.workers")
    manifests.add_argument("--parameter-servers", type=int, help="parameter_server: default training.parameter_servers")
    manifests.add_argument("--run", help="name prefix of every object (default <pipeline>-train)")
    manifests.add_argument(
        "--spec", help="the run's spec on the shared volume (default /var/lib/runway/training/<pipeline>/spec.json)"
    )
    manifests.add_argument(
        "--jobset", action="store_true", help="one JobSet instead of Jobs (needs the JobSet controller)"
    )
    manifests.add_argument("-o", "--output", help="write one file per object into this folder (default: stdout)")
    manifests.set_defaults(func=cmd_train_manifests)
