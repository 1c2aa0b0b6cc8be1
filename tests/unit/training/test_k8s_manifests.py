"""``runway train manifests``: the rendered Jobs, Service and JobSet, checked against the Kubernetes API models and
against each other (every pod's TF_CONFIG names the Service hostnames of the pods that really exist)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline_components.cli import main
from pipeline_components.config import load_pipeline_config
from pipeline_components.errors import ConfigError
from pipeline_components.training.k8s import DATA_MOUNT, INDEX_ANNOTATION, pod_tf_config, render_manifests
from tests.conftest import CONFIGS
from tests.unit.kustomize_lite import type_errors


@pytest.fixture(scope="module")
def flights():  # type: ignore[no-untyped-def]
    return load_pipeline_config(CONFIGS / "flights.yaml")


def api_errors(obj: dict[str, Any]) -> list[str]:
    """Problems of one object against its model in the kubernetes client (types, then required fields/enums)."""
    from kubernetes import client

    model = {("v1", "Service"): "V1Service", ("batch/v1", "Job"): "V1Job"}[(obj["apiVersion"], obj["kind"])]
    where = f"{obj['kind']}/{obj['metadata']['name']}"
    errors = type_errors(obj, model, where)

    class Response:
        data = json.dumps(obj)

    try:
        client.ApiClient().deserialize(Response(), model)
    except ValueError as error:
        errors.append(f"{where}: {error}")
    return errors


def pods(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    """(hostname, environment with the completion index filled in as Kubernetes does) of every pod."""
    found = []
    for job in (o for o in objects if o["kind"] == "Job"):
        spec = job["spec"]
        (container,) = spec["template"]["spec"]["containers"]
        for index in range(spec["completions"]):
            env = {}
            for item in container["env"]:
                if "value" in item:
                    env[item["name"]] = item["value"]
                else:
                    assert item["valueFrom"]["fieldRef"]["fieldPath"] == f"metadata.annotations['{INDEX_ANNOTATION}']"
                    env[item["name"]] = str(index)
            found.append((f"{job['metadata']['name']}-{index}", env))
    return found


@pytest.mark.parametrize(
    ("strategy", "roles"),
    [
        pytest.param("multi_worker_mirrored", {"worker": 3}, id="multi_worker_mirrored"),
        pytest.param("parameter_server", {"chief": 1, "worker": 3, "ps": 2}, id="parameter_server"),
    ],
)
def test_roles_replicas_and_every_pods_tf_config(flights, strategy: str, roles: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    objects = render_manifests(flights, strategy=strategy, workers=3, parameter_servers=2)
    for obj in objects:
        assert api_errors(obj) == []
    (service,) = [o for o in objects if o["kind"] == "Service"]
    jobs = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Job"}
    assert sorted(jobs) == sorted(f"flights-train-{role}" for role in roles)
    assert service["spec"]["clusterIP"] == "None"
    namespace = service["metadata"]["namespace"]
    for role, count in roles.items():
        spec = jobs[f"flights-train-{role}"]["spec"]
        assert spec["completionMode"] == "Indexed"
        assert spec["completions"] == spec["parallelism"] == count
        template = spec["template"]
        assert template["spec"]["subdomain"] == service["metadata"]["name"]
        assert all(template["metadata"]["labels"][k] == v for k, v in service["spec"]["selector"].items())
    hosts = {f"{name}.{service['metadata']['name']}.{namespace}.svc" for name, _ in pods(objects)}
    port = service["spec"]["ports"][0]["port"]
    tasks = set()
    for hostname, env in pods(objects):
        tf_config = pod_tf_config(env)
        # the cluster lists exactly the pods that exist, by their Service hostnames, on the Service's port
        listed = {address for addresses in tf_config["cluster"].values() for address in addresses}
        assert listed == {f"{host}:{port}" for host in hosts}
        assert {role: len(a) for role, a in tf_config["cluster"].items()} == roles
        task = tf_config["task"]
        own = tf_config["cluster"][task["type"]][task["index"]]
        assert own.startswith(f"{hostname}.")  # each pod finds itself at its own address
        tasks.add((task["type"], task["index"]))
    assert tasks == {(role, i) for role, count in roles.items() for i in range(count)}


def test_pods_run_the_pipeline_image_with_the_shared_claim_and_resources(flights) -> None:  # type: ignore[no-untyped-def]
    objects = render_manifests(flights, strategy="parameter_server", workers=2)
    for job in (o for o in objects if o["kind"] == "Job"):
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == "runway-pipeline:0.1.0"
        assert container["resources"]["requests"] == container["resources"]["limits"]
        (volume,) = pod["volumes"]
        assert volume["persistentVolumeClaim"]["claimName"] == "runway-data"
        assert container["volumeMounts"] == [{"name": volume["name"], "mountPath": DATA_MOUNT}]
        assert pod["restartPolicy"] == "Never"
    ps = next(o for o in objects if o["metadata"]["name"] == "flights-train-ps")
    assert ps["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] == "2Gi"


def test_a_single_process_strategy_is_refused(flights) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="runs in one process"):
        render_manifests(flights, strategy="mirrored")


def test_jobset_holds_the_same_roles_and_matches_its_pod_names(flights) -> None:  # type: ignore[no-untyped-def]
    (jobset,) = render_manifests(flights, strategy="parameter_server", workers=2, jobset=True)
    assert jobset["kind"] == "JobSet"
    assert jobset["spec"]["network"]["enableDNSHostnames"] is True
    subdomain = jobset["spec"]["network"]["subdomain"]
    replicated = {r["name"]: r for r in jobset["spec"]["replicatedJobs"]}
    assert {name: r["template"]["spec"]["completions"] for name, r in replicated.items()} == {
        "chief": 1,
        "worker": 2,
        "ps": 1,
    }
    env = {
        e["name"]: e.get("value")
        for e in replicated["worker"]["template"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    cluster = json.loads(env["RUNWAY_TF_CLUSTER"])
    # JobSet pods are <jobset>-<replicated job>-<job index>-<pod index> under the JobSet's subdomain
    assert cluster["worker"][1].startswith(f"{jobset['metadata']['name']}-worker-0-1.{subdomain}.")


def test_the_command_writes_one_file_per_object(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["train", "manifests", "flights", "--strategy", "multi_worker_mirrored", "-o", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job-flights-train-worker.yaml", "service-flights-train.yaml"]
    assert main(["train", "manifests", "flights", "--strategy", "parameter_server", "--workers", "4"]) == 0
    assert "flights-train-worker-3.flights-train.runway.svc:2222" in capsys.readouterr().out
