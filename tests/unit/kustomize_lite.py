"""Render the Kustomize subset that ``infra/k8s/`` uses, without kubectl, and check objects against Kubernetes' models.

Supported kustomization keys: ``resources`` (files and folders), ``namespace``, ``patches`` (strategic merge patch
files naming their target by kind and name), ``configMapGenerator`` (``files``, with kustomize's content-hash name
suffix and the references to it rewritten) and ``generatorOptions.disableNameSuffixHash``. Any other key is refused,
so a kustomization that grows beyond this subset fails the tests instead of being rendered wrongly.
``test_infra_k8s.py`` compares the result with ``kubectl kustomize`` wherever kubectl is installed.

Validation uses the models of the ``kubernetes`` Python client (the API's OpenAPI types): every field must be known
to its model (kubeconform's ``-strict``), every value of the declared type, and the object must deserialize
(required fields present).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_KEYS = {"apiVersion", "kind", "namespace", "resources", "patches", "configMapGenerator", "generatorOptions"}
CLUSTER_SCOPED_KINDS = {"Namespace", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding"}
# Strategic merge keys of the lists the patches touch (from the Kubernetes API's x-kubernetes-patch-merge-key).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}

Object = dict[str, Any]


class KustomizeError(ValueError):
    """The kustomization uses something this renderer does not support, or names something that is not there."""


def load_documents(path: Path) -> list[Object]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def object_key(obj: Object) -> tuple[str, str, str]:
    meta = obj.get("metadata", {})
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def strategic_merge(target: Any, patch: Any, *, field: str = "") -> Any:
    """Kubernetes' strategic merge patch for the simple cases: maps merge, ``null`` deletes, keyed lists merge."""
    if isinstance(target, dict) and isinstance(patch, dict):
        merged = dict(target)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value, field=key)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    merge_key = MERGE_KEYS.get(field)
    if merge_key and isinstance(target, list) and isinstance(patch, list):
        merged_list = [copy.deepcopy(item) for item in target]
        for item in patch:
            for index, existing in enumerate(merged_list):
                if existing.get(merge_key) == item.get(merge_key):
                    merged_list[index] = strategic_merge(existing, item)
                    break
            else:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(patch)


def config_map_hash(config_map: Object) -> str:
    """Kustomize's name suffix of a generated ConfigMap (api/hasher: sha256 of the Go JSON, first 10 hex, remapped)."""
    # The name is always empty: kustomize looks it up with yaml.Lookup("metadata/name"), one field named
    # "metadata/name", which never matches (checked against kubectl kustomize's suffixes).
    encoded: dict[str, Any] = {"data": config_map.get("data", {}), "kind": "ConfigMap", "name": ""}
    if config_map.get("binaryData"):
        encoded["binaryData"] = config_map["binaryData"]
    # Go's encoding/json: sorted keys, no spaces, non-ASCII kept, <, > and & escaped.
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans({"0": "g", "1": "h", "3": "k", "a": "m", "e": "t"}))


@dataclass
class _Rendered:
    objects: list[Object]
    generated: dict[str, Object]  # ConfigMaps whose name gets the hash suffix, by their base name


def _render(root: Path) -> _Rendered:
    file = root / "kustomization.yaml"
    if not file.is_file():
        raise KustomizeError(f"{root} has no kustomization.yaml")
    spec = yaml.safe_load(file.read_text()) or {}
    unsupported = set(spec) - SUPPORTED_KEYS
    if unsupported:
        raise KustomizeError(f"{file}: keys {sorted(unsupported)} are not supported by this renderer")
    objects: list[Object] = []
    generated: dict[str, Object] = {}
    for entry in spec.get("resources", []):
        path = (root / entry).resolve()
        if path.is_dir():
            sub = _render(path)
            objects += sub.objects
            generated.update(sub.generated)
        elif path.is_file():
            objects += load_documents(path)
        else:
            raise KustomizeError(f"{file}: resource {entry} does not exist")
    hashed = not spec.get("generatorOptions", {}).get("disableNameSuffixHash", False)
    for generator in spec.get("configMapGenerator", []):
        unknown = set(generator) - {"name", "files"}
        if unknown:
            raise KustomizeError(f"{file}: configMapGenerator keys {sorted(unknown)} are not supported")
        data: dict[str, str] = {}
        for item in generator["files"]:
            key, _, relative = item.rpartition("=") if "=" in item else ("", "", item)
            source = root / relative
            if not source.is_file():
                raise KustomizeError(f"{file}: configMapGenerator file {relative} does not exist")
            data[key or Path(relative).name] = source.read_text()
        config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data}
        objects.append(config_map)
        if hashed:
            generated[generator["name"]] = config_map
    for patch in spec.get("patches", []):
        if set(patch) != {"path"}:
            raise KustomizeError(f"{file}: only patch files are supported (strategic merge, target named inside)")
        for document in load_documents(root / patch["path"]):
            matches = [
                index
                for index, obj in enumerate(objects)
                if obj["kind"] == document["kind"] and obj["metadata"]["name"] == document["metadata"]["name"]
            ]
            if len(matches) != 1:
                raise KustomizeError(
                    f"{file}: patch {patch['path']} targets {document['kind']}/{document['metadata']['name']}, "
                    f"which matches {len(matches)} objects"
                )
            objects[matches[0]] = strategic_merge(objects[matches[0]], document)
            if objects[matches[0]]["kind"] == "ConfigMap" and objects[matches[0]]["metadata"]["name"] in generated:
                generated[objects[matches[0]]["metadata"]["name"]] = objects[matches[0]]
    namespace = spec.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED_KINDS:
                obj.setdefault("metadata", {})["namespace"] = namespace
    return _Rendered(objects=objects, generated=generated)


def _rename_config_map_references(pod_spec: Object, names: dict[str, str]) -> None:
    for volume in pod_spec.get("volumes", []):
        if "configMap" in volume:
            volume["configMap"]["name"] = names.get(volume["configMap"]["name"], volume["configMap"]["name"])
        for source in volume.get("projected", {}).get("sources", []):
            if "configMap" in source:
                source["configMap"]["name"] = names.get(source["configMap"]["name"], source["configMap"]["name"])
    for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
        for env_from in container.get("envFrom", []):
            if "configMapRef" in env_from:
                ref = env_from["configMapRef"]
                ref["name"] = names.get(ref["name"], ref["name"])
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("configMapKeyRef")
            if ref:
                ref["name"] = names.get(ref["name"], ref["name"])


def render(root: Path) -> list[Object]:
    """Build the kustomization in ``root`` like ``kubectl kustomize root`` (for the supported subset)."""
    rendered = _render(root)
    objects = [copy.deepcopy(obj) for obj in rendered.objects]
    names: dict[str, str] = {}
    for name, config_map in rendered.generated.items():
        names[name] = f"{name}-{config_map_hash(config_map)}"
    for obj in objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] in names:
            obj["metadata"]["name"] = names[obj["metadata"]["name"]]
        template = obj.get("spec", {}).get("template", {}).get("spec")
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job") and template:
            _rename_config_map_references(template, names)
    return objects


# --- validation against the kubernetes client's models ------------------------------------------------------------

MODELS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2HorizontalPodAutoscaler",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
}


def type_errors(value: Any, type_name: str, path: str) -> list[str]:
    from kubernetes import client

    if type_name.startswith("list["):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        inner = type_name[5:-1]
        return [error for i, item in enumerate(value) for error in type_errors(item, inner, f"{path}[{i}]")]
    if type_name.startswith(("dict(", "dict[")):
        if not isinstance(value, dict):
            return [f"{path}: expected a map, got {type(value).__name__}"]
        inner = type_name[5:-1].split(",", 1)[1].strip()
        return [error for key, item in value.items() for error in type_errors(item, inner, f"{path}.{key}")]
    scalar_types: dict[str, tuple[type, ...]] = {
        "str": (str,),
        "int": (int,),
        "float": (int, float),
        "bool": (bool,),
        "datetime": (str,),
        "date": (str,),
    }
    if type_name in scalar_types:
        expected = scalar_types[type_name]
        if not isinstance(value, expected) or (type_name in ("int", "float") and isinstance(value, bool)):
            return [f"{path}: expected {type_name}, got {type(value).__name__} {value!r}"]
        return []
    if type_name == "object":  # int-or-string, quantities and free-form fields
        return []
    model = getattr(client, type_name)
    if not isinstance(value, dict):
        return [f"{path}: expected a {type_name} object, got {type(value).__name__}"]
    fields = {json_name: attribute for attribute, json_name in model.attribute_map.items()}
    errors: list[str] = []
    for key, item in value.items():
        if key not in fields:
            errors.append(f"{path}.{key}: unknown field of {type_name}")
        else:
            errors += type_errors(item, model.openapi_types[fields[key]], f"{path}.{key}")
    return errors


class _Response:
    """What ``ApiClient.deserialize`` reads: a body with ``data``."""

    def __init__(self, obj: Object) -> None:
        self.data = json.dumps(obj)


def validation_errors(obj: Object) -> list[str]:
    """Problems of one object against its Kubernetes API model (empty when it is valid)."""
    from kubernetes import client

    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    model = MODELS.get((obj.get("apiVersion", ""), obj.get("kind", "")))
    if model is None:
        return [f"{where}: apiVersion {obj.get('apiVersion')!r} kind {obj.get('kind')!r} has no model here"]
    errors = type_errors(obj, model, where)
    if not errors:
        try:
            client.ApiClient().deserialize(_Response(obj), model)
        except ValueError as error:  # a required field is missing or a value is not allowed
            errors.append(f"{where}: {error}")
    return errors
