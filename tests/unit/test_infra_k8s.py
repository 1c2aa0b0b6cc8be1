"""Static checks of infra/k8s/: each overlay rendered (tests/unit/kustomize_lite.py, cross-checked against
``kubectl kustomize`` where kubectl is installed) and validated against the Kubernetes API's models, then
cross-checked: selectors match the pods, probes and Services name declared ports, the HPA and the
PodDisruptionBudget target the Deployment, the TF Serving flags find their files in the ConfigMap and the model
store mounted read-only, clients reach the model servers only through the load balancer and the NetworkPolicy lets
nothing else but the rollout reach them; the Airflow Helm values hold no secret.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_components.fleet import model_config_path
from pipeline_components.settings import CHECKOUT
from tests.unit.fleet.nginx_conf import K8S_CONF
from tests.unit.kustomize_lite import KustomizeError, object_key, render, type_errors, validation_errors

K8S = CHECKOUT / "infra" / "k8s"
OVERLAYS = {"dev": "runway-dev", "prod": "runway"}
MODEL_NAME = "flights_delay"


@pytest.fixture(scope="module", params=sorted(OVERLAYS))
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(K8S / "overlays" / request.param)


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    (obj,) = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    return obj


def model_servers(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objects, "Deployment", "tf-serving")


def load_balancer(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objects, "Deployment", "serving-lb")


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def serving_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = model_servers(objects)["spec"]["template"]["spec"]["containers"]
    return container


def test_every_object_is_valid_against_the_kubernetes_api(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    assert sorted(o["kind"] for o in objects) == sorted(
        [
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "Deployment",
            "HorizontalPodAutoscaler",
            "Namespace",
            "NetworkPolicy",
            "PersistentVolumeClaim",
            "PodDisruptionBudget",
            "Service",
            "Service",
            "Service",
        ]
    )
    assert [error for obj in objects for error in validation_errors(obj)] == []


def test_validation_rejects_unknown_fields_wrong_types_and_missing_required_fields() -> None:
    deployment = model_servers(render(K8S / "overlays" / "prod"))
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    assert "unknown field" in " ".join(validation_errors(misspelt))
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "3"
    assert "expected int" in " ".join(validation_errors(wrong_type))
    missing = copy.deepcopy(deployment)
    del missing["spec"]["selector"]
    assert "selector" in " ".join(validation_errors(missing))


def test_renderer_refuses_what_it_does_not_support(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nimages:\n  - name: tensorflow/serving\n")
    with pytest.raises(KustomizeError, match="images"):
        render(tmp_path)


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_rendering_matches_kubectl_kustomize(name: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; the overlays are rendered by tests/unit/kustomize_lite.py only")
    result = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / name)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    expected = {object_key(o): o for o in yaml.safe_load_all(result.stdout) if o}
    rendered = {object_key(o): o for o in render(K8S / "overlays" / name)}
    assert rendered == expected


def test_everything_lives_in_the_overlay_namespace(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = overlay
    assert one(objects, "Namespace")["metadata"]["name"] == OVERLAYS[name]
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == OVERLAYS[name], object_key(obj)


def test_selectors_ports_and_probes_agree(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    deployment = model_servers(objects)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert matches(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    container = serving_container(objects)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"grpc": 8500, "rest": 8501}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        handler = container[probe]
        port = (handler.get("httpGet") or handler.get("tcpSocket"))["port"]
        assert port in ports, f"{probe} names port {port}, which the container does not declare"
    assert container["readinessProbe"]["httpGet"] == {"path": f"/v1/models/{MODEL_NAME}", "port": "rest"}
    assert "httpGet" not in container["livenessProbe"], "liveness must not depend on the model"
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    assert set(services) == {"tf-serving", "tf-serving-backends", "tf-serving-pods"}
    lb_labels = load_balancer(objects)["spec"]["template"]["metadata"]["labels"]
    # What clients use is the load balancer, never the model servers themselves.
    assert matches(services["tf-serving"]["spec"]["selector"], lb_labels)
    assert not matches(services["tf-serving"]["spec"]["selector"], pod_labels)
    for name in ("tf-serving-backends", "tf-serving-pods"):
        assert matches(services[name]["spec"]["selector"], pod_labels)
    lb_ports = {p["name"] for p in load_balancer(objects)["spec"]["template"]["spec"]["containers"][0]["ports"]}
    for service in services.values():
        assert {(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
            ("grpc", 8500, "grpc"),
            ("rest", 8501, "rest"),
        }
        assert {"grpc", "rest"} <= lb_ports
    services_list = list(services.values())
    headless = next(s for s in services_list if s["metadata"]["name"] == "tf-serving-pods")
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True


def test_autoscaler_and_disruption_budget_target_the_deployment(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    deployment = model_servers(objects)
    hpa = one(objects, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "tf-serving"}
    assert 1 <= hpa["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["maxReplicas"]
    pdb = one(objects, "PodDisruptionBudget")["spec"]
    assert matches(pdb["selector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"])
    if "minAvailable" in pdb:
        assert pdb["minAvailable"] < hpa["minReplicas"], "a budget of every pod would block node drains"
    else:
        assert pdb["maxUnavailable"] >= 1
    strategy = deployment["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0, "an image or config update must never take a serving pod away first"


def test_server_flags_find_their_files(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    deployment = model_servers(objects)
    pod = deployment["spec"]["template"]["spec"]
    container = serving_container(objects)
    args = dict(arg[2:].split("=", 1) for arg in container["args"])
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    config_maps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    for flag in ("batching_parameters_file", "monitoring_config_file"):
        folder, _, key = args[flag].rpartition("/")
        volume = volumes[mounts[folder]["name"]]
        assert key in config_maps[volume["configMap"]["name"]]["data"], f"--{flag}: {key} is not in the ConfigMap"
    assert args["enable_batching"] == "true"
    store_mount = mounts["/var/lib/runway"]
    assert store_mount["readOnly"] is True
    claim = volumes[store_mount["name"]]["persistentVolumeClaim"]
    assert claim["readOnly"] is True
    pvc = one(objects, "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == claim["claimName"] == "runway-data", "the claim the pipeline pods mount"
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert args["model_config_file"] == str(model_config_path(Path("/var/lib/runway/models")))
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]
    assert container["image"].startswith("tensorflow/serving:") and not container["image"].endswith(":latest")


def test_kubernetes_configs_are_the_compose_ones() -> None:
    for name in ("batching.config", "monitoring.config"):
        assert (K8S / "base" / "config" / name).read_text() == (CHECKOUT / "infra" / "serving" / name).read_text(), (
            f"infra/k8s/base/config/{name} differs from infra/serving/{name}: copy it again"
        )


def test_airflow_chart_values_mount_the_shared_claim() -> None:
    values = yaml.safe_load((K8S / "airflow" / "values.yaml").read_text())
    errors = (
        type_errors(values["env"], "list[V1EnvVar]", "env")
        + type_errors(values["volumes"], "list[V1Volume]", "volumes")
        + type_errors(values["volumeMounts"], "list[V1VolumeMount]", "volumeMounts")
    )
    assert errors == []
    env = {item["name"]: item.get("value") for item in values["env"]}
    (mount,) = [m for m in values["volumeMounts"] if m["name"] == "runway-data"]
    (volume,) = [v for v in values["volumes"] if v["name"] == "runway-data"]
    assert mount["name"] == volume["name"] and mount["mountPath"] == env["RUNWAY_HOME"] == "/var/lib/runway"
    prod = render(K8S / "overlays" / "prod")
    claim = one(prod, "PersistentVolumeClaim")["metadata"]
    assert volume["persistentVolumeClaim"]["claimName"] == env["RUNWAY_K8S_PVC"] == claim["name"]
    assert env["RUNWAY_K8S_NAMESPACE"] == claim["namespace"]
    # Celery workers run the tasks (the topology's executor: tests/unit/deploy/test_topology.py); the TFX nodes of a
    # task still run in pods of their own.
    assert env["RUNWAY_NODE_BACKEND"] == "kubernetes" and values["executor"] == "CeleryExecutor"
    assert values["allowPodLaunching"] is True, "the workers start the node pods"
    assert values["airflowVersion"].startswith("3.")


# --- the load balancer and the NetworkPolicy --------------------------------------------------------------------

# The labels the official Airflow chart gives the pods that run tasks (its Celery workers): the rollout.
AIRFLOW_WORKER_LABELS = {"tier": "airflow", "component": "worker"}


def test_the_load_balancer_runs_the_allow_listed_config(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    pod = load_balancer(objects)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"].startswith("nginxinc/nginx-unprivileged:") and not container["image"].endswith("latest")
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/nginx/nginx.conf")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    config_map = one(objects, "ConfigMap", volume["configMap"]["name"])
    assert config_map["data"][mount["subPath"]] == K8S_CONF.read_text()
    assert pod["securityContext"]["runAsNonRoot"] is True
    for probe in ("readinessProbe", "livenessProbe"):
        port = container[probe]["httpGet"]["port"]
        assert port in {p["name"] for p in container["ports"]}
    # nginx sends to the ready model servers, through the Service that selects them.
    backends = one(objects, "Service", "tf-serving-backends")
    assert "publishNotReadyAddresses" not in backends["spec"] and backends["spec"]["type"] == "ClusterIP"
    assert "server tf-serving-backends:8500 " in K8S_CONF.read_text()
    assert "server tf-serving-backends:8501 " in K8S_CONF.read_text()


def test_only_the_load_balancer_and_the_rollout_reach_the_model_servers(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = overlay
    pod_labels = model_servers(objects)["spec"]["template"]["metadata"]["labels"]
    ports = {port["name"]: port["containerPort"] for port in serving_container(objects)["ports"]}
    policies = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and matches(o["spec"]["podSelector"]["matchLabels"], pod_labels)
    ]
    assert policies, "no NetworkPolicy selects the model servers: every pod in the cluster reaches their admin API"
    lb_labels = load_balancer(objects)["spec"]["template"]["metadata"]["labels"]
    admitted_on_grpc: list[dict[str, str]] = []
    for policy in policies:
        assert "Ingress" in policy["spec"]["policyTypes"]
        for rule in policy["spec"].get("ingress", []):
            assert rule.get("from"), f"{policy['metadata']['name']}: a rule without `from` admits everyone"
            rule_ports = {ports.get(p["port"], p["port"]) for p in rule.get("ports") or [{"port": "any"}]}
            if rule_ports & {ports["grpc"], "any"}:  # the port of ModelService/HandleReloadConfigRequest
                for peer in rule["from"]:
                    assert set(peer) == {"podSelector"}, f"gRPC open to {peer}: only pods of this namespace"
                    admitted_on_grpc.append(peer["podSelector"]["matchLabels"])
    assert all(matches(labels, lb_labels) or labels == AIRFLOW_WORKER_LABELS for labels in admitted_on_grpc)
    assert any(matches(labels, lb_labels) for labels in admitted_on_grpc), "the load balancer must reach them"
    assert AIRFLOW_WORKER_LABELS in admitted_on_grpc, "the rollout (Airflow's workers) must reach them"


# --- Airflow's Helm values ---------------------------------------------------------------------------------------

# Chart values that would hold a secret's value, and the Secret-name values that replace them (chart >= 1.16).
SECRET_VALUES = {
    "fernetKey": "fernetKeySecretName",
    "apiSecretKey": "apiSecretKeySecretName",
    "jwtSecret": "jwtSecretName",
}
# The same under `data` and `redis`: the chart would otherwise write the broker URL, the result backend's URL and
# Redis's password into Secrets of its own (a generated Redis password changes at every upgrade).
DATA_SECRET_VALUES = {
    "metadataConnection": "metadataSecretName",
    "brokerUrl": "brokerUrlSecretName",
    "resultBackendConnection": "resultBackendSecretName",
}


def test_airflow_chart_values_reference_secrets_and_hold_none() -> None:
    text = (K8S / "airflow" / "values.yaml").read_text()
    values = yaml.safe_load(text)
    for literal, by_name in SECRET_VALUES.items():
        assert values.get(literal) is None, f"{literal} is written in values.yaml; use {by_name}"
        assert values.get(by_name), f"{by_name}: the Secret with the {literal}"
    assert values.get("webserverSecretKey") is None
    for literal, by_name in DATA_SECRET_VALUES.items():
        assert values["data"].get(by_name) and literal not in values["data"], f"data.{literal}: use data.{by_name}"
    assert values["redis"]["enabled"] is True and values["redis"].get("password") is None
    assert values["redis"].get("passwordSecretName"), "the chart's Redis password from a Secret you create"
    assert values["postgresql"]["enabled"] is False, "the bundled PostgreSQL comes with a default password"
    assert values["createUserJob"]["defaultUser"]["enabled"] is False, "the chart's default user is admin/admin"
    api = values["apiServer"]
    assert type_errors(api["env"], "list[V1EnvVar]", "apiServer.env") == []
    assert type_errors(api["extraVolumes"], "list[V1Volume]", "apiServer.extraVolumes") == []
    assert type_errors(api["extraVolumeMounts"], "list[V1VolumeMount]", "apiServer.extraVolumeMounts") == []
    for variable in [*values["env"], *api["env"]]:
        # A *_FILE holds a path and a *_SECRET_NAME the name of a Secret: never the value itself.
        if re.search(r"PASSWORD|SECRET|KEY|TOKEN", variable["name"]) and not variable["name"].endswith(
            ("_FILE", "_SECRET_NAME")
        ):
            assert "secretKeyRef" in variable.get("valueFrom", {}), f"{variable['name']} must come from a Secret"
    secrets = {ref["name"] for v in api["env"] if (ref := v.get("valueFrom", {}).get("secretKeyRef"))}
    secrets |= {values[name] for name in SECRET_VALUES.values()} | {values["redis"]["passwordSecretName"]}
    secrets |= {values["data"][name] for name in DATA_SECRET_VALUES.values()}
    secrets |= {ref["name"] for v in values["env"] if (ref := v.get("valueFrom", {}).get("secretKeyRef"))}
    secrets |= {v["secret"]["secretName"] for v in values["volumes"] if "secret" in v}
    for secret in secrets:  # the header says how to create each one
        assert f"create secret generic {secret} " in text, secret
    passwords_file = values["config"]["core"]["simple_auth_manager_passwords_file"]
    (auth,) = [m for m in api["extraVolumeMounts"] if passwords_file.startswith(m["mountPath"] + "/")]
    assert passwords_file in api["args"][-1] and api["args"][-1].endswith("exec airflow api-server")
    assert next(v for v in api["extraVolumes"] if v["name"] == auth["name"])["emptyDir"] is not None
    # The broker URL holds the Redis password: it and the password Secret are made from one value.
    assert re.search(r'--from-literal=connection="redis://:\$REDIS_PASSWORD@airflow-redis:6379/0"', text)
    assert re.search(r"--from-literal=password=\"\$REDIS_PASSWORD\"", text)


def test_ml_metadata_is_postgresql_for_every_airflow_pod_and_every_node_pod() -> None:
    """No SQLite on the ReadWriteMany claim: the Airflow pods read the URL and the password file from the Secret, and
    the node pods they start get the same Secret mounted where the node looks for it (orchestration/backends.py)."""
    from pipeline_components.orchestration.backends import METADATA_PASSWORD_IN_CONTAINER, ContainerSettings
    from pipeline_components.settings import Settings

    values = yaml.safe_load((K8S / "airflow" / "values.yaml").read_text())
    env = {item["name"]: item for item in values["env"]}
    url_ref = env["RUNWAY_METADATA_URL"]["valueFrom"]["secretKeyRef"]
    password_file = env["RUNWAY_METADATA_PASSWORD_FILE"]["value"]
    secret_name = env["RUNWAY_K8S_METADATA_SECRET_NAME"]["value"]
    assert url_ref == {"name": secret_name, "key": "url"}
    (volume,) = [v for v in values["volumes"] if v.get("secret", {}).get("secretName") == secret_name]
    assert volume["secret"]["items"] == [{"key": "password", "path": "password"}]
    (mount,) = [m for m in values["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] and f"{mount['mountPath']}/password" == password_file == METADATA_PASSWORD_IN_CONTAINER
    # What the dag-processor reads when it builds the node pods (the URL as the Secret would give it).
    plain = {name: item.get("value", "postgresql://mlmd@db.example:5432/mlmd") for name, item in env.items()}
    container = ContainerSettings.from_env(plain)
    assert container.metadata_secret == secret_name and container.metadata_url
    assert Settings.from_env(plain).metadata_postgres is not None
    text = (K8S / "airflow" / "values.yaml").read_text()
    assert "metadata-init.sql" in text, "the header says how to create the database and its role"
