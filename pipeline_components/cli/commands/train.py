"""``runway train manifests``: a training run as Kubernetes manifests (orchestrator side, no TensorFlow)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

import yaml

from pipeline_components.config import STRATEGIES, load_pipeline_config
from pipeline_components.settings import Settings


def cmd_train_manifests(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline_components.cli import config_path
    from pipeline_components.training.k8s import render_manifests

    config = load_pipeline_config(config_path(settings, args.pipeline))
    objects = render_manifests(
        config,
        strategy=args.strategy,
        workers=args.workers,
        parameter_servers=args.parameter_servers,
        run=args.run,
        spec_path=args.spec,
        jobset=args.jobset,
    )
    text = yaml.safe_dump_all(objects, sort_keys=False)
    if args.output is None:
        print(text, end="")
        return
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for obj in objects:
        path = out / f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(obj, sort_keys=False))
        print(path)


def add_train_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    train = sub.add_parser(
        "train",
        help="distributed training on Kubernetes: render a run's manifests",
        formatter_class=formatter,
        description="Training under a tf.distribute strategy (docs/training.md). Locally the Trainer node runs\n"
        "every strategy itself; on Kubernetes, `runway train manifests` renders the same run as manifests.",
    )
    train_sub = train.add_subparsers(dest="train_command", required=True, metavar="ACTION")
    manifests = train_sub.add_parser(
        "manifests",
        help="render Indexed Jobs (one per role) + a headless Service, or a JobSet",
        formatter_class=formatter,
        description=textwrap.dedent("""\
            Render a multi_worker_mirrored or parameter_server run of PIPELINE as Kubernetes manifests:
            one Indexed Job per role (worker; or chief, worker, ps) and a headless Service that gives each pod
            a stable name; each pod composes its TF_CONFIG from the cluster, its role and its completion index.
            Pods run the pipeline image (training.cluster.image), mount the claim training.cluster.data_claim at
            /var/lib/runway and read the run's spec written by the Trainer (--spec).

            Apply:   runway train manifests flights --strategy multi_worker_mirrored -o k8s-train/
                     kubectl apply -f k8s-train/
            Follow:  kubectl -n runway get pods -l runway.dev/training=flights-train
            Remove:  kubectl -n runway delete job,service -l runway.dev/training=flights-train"""),
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
