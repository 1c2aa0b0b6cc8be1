"""InfraValidator's executor: warm copy of the candidate, a real server, REST and gRPC queries, the verdict."""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tfx.types import artifact_utils
from tfx.utils import path_utils

from pipeline_components.components.gate import Artifacts, GateExecutor, GateOutcome
from pipeline_components.components.infra_validator.requests import (
    CLASSIFY_SIGNATURE,
    PREDICT_SIGNATURE,
    WARMUP_FILE,
    raw_features,
    raw_tensors,
    write_warmup,
)
from pipeline_components.components.infra_validator.server import ValidationServer
from pipeline_components.components.model_inspector import inspect_saved_model, serving_signatures
from pipeline_components.errors import ModelInspectionError
from pipeline_components.reports.render import Verdict, render, status_cell

log = logging.getLogger("runway.infra_validator")

TOLERANCE = 1e-4  # the server runs the same graph: answers must match the in-process ones to float precision
BLESSED_FILE, NOT_BLESSED_FILE = "INFRA_BLESSED", "INFRA_NOT_BLESSED"  # TFX InfraValidator's marker files


def read_examples(examples: Any, count: int) -> list[bytes]:
    """The first ``count`` serialized tf.Examples of the eval split (else the first split) of an Examples artifact."""
    import tensorflow as tf

    splits = artifact_utils.decode_split_names(examples.split_names) if examples.split_names else []
    split = "eval" if "eval" in splits else (splits[0] if splits else "eval")
    files = sorted(str(p) for p in Path(examples.uri, f"Split-{split}").glob("*") if p.is_file())
    if not files:
        raise FileNotFoundError(f"no files in {Path(examples.uri, f'Split-{split}')}")
    compression = "GZIP" if files[0].endswith(".gz") else None
    dataset = tf.data.TFRecordDataset(files, compression_type=compression).take(count)
    return [record.numpy() for record in dataset]


def _compare(name: str, served: list[list[float]], local: list[list[float]]) -> tuple[float, str | None]:
    import numpy as np

    a, b = np.asarray(served, dtype=float), np.asarray(local, dtype=float)
    if a.shape != b.shape:
        return float("inf"), f"{name}: the server answered shape {a.shape}, the SavedModel in-process {b.shape}"
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    if diff > TOLERANCE:
        return diff, f"{name}: the server's answers differ from the SavedModel's by up to {diff:.3g} (> {TOLERANCE})"
    return diff, None


def _check_answers(
    verdict: dict[str, Any], protocol: str, what: str, count: int, served: list[list[float]], local: list[list[float]]
) -> None:
    """Compare the server's answers with the SavedModel's own; record the check, its largest difference
    (``<protocol>_max_abs_diff``) and its failure, if any, in ``verdict``."""
    diff, failure = _compare(what, served, local)
    verdict[f"{protocol}_max_abs_diff"] = diff
    check = f"{what.split(' (')[0]}, {count} real examples"
    verdict["checks"].append({"check": check, "ok": failure is None, "detail": f"max |diff| {diff:.3g}"})
    if failure:
        verdict["failures"].append(failure)


def validate(
    *,
    candidate_dir: Path,
    warmed_dir: Path,
    serialized: list[bytes],
    model_name: str,
    warmup_records: int,
    query_examples: int,
    timeout_s: float,
    workdir: Path,
    log_path: Path,
) -> dict[str, Any]:
    """Copy, warm, serve, query, compare. Never raises for a bad model: returns the verdict with its failures."""
    verdict: dict[str, Any] = {"blessed": False, "failures": [], "checks": []}
    failures: list[str] = verdict["failures"]
    started = time.monotonic()
    try:
        signatures = serving_signatures(inspect_saved_model(candidate_dir))
    except ModelInspectionError as error:
        failures.append(f"the candidate is not a readable SavedModel: {error}")
        return verdict
    if warmed_dir.exists():
        shutil.rmtree(warmed_dir)
    shutil.copytree(candidate_dir, warmed_dir)
    try:
        counts = write_warmup(warmed_dir / WARMUP_FILE, serialized, signatures, model_name, warmup_records)
    except ValueError as error:
        failures.append(f"no warmup requests could be built: {error}")
        return verdict
    verdict["warmup"] = counts
    verdict["warmup_records"] = sum(counts.values())
    queries = serialized[:query_examples]

    server = ValidationServer(model_name=model_name, model_dir=warmed_dir, workdir=workdir, log_path=log_path)
    verdict["server"] = server.kind
    verdict["server_command"] = " ".join([*server.command, *server.args])
    try:
        server.start()
        available, why = server.wait_available(timeout_s)
        verdict["load_seconds"] = round(time.monotonic() - started, 2)
        verdict["checks"].append({"check": "load (with warmup)", "ok": available, "detail": why})
        if not available:
            failures.append(f"{why}; server log:\n{server.log(2000)}")
            return verdict
        replayed = re.findall(r"Number of warmup records read: (\d+)", server.log(100_000))
        verdict["warmup_replayed"] = int(replayed[-1]) if replayed else None

        import tensorflow as tf

        loaded = tf.saved_model.load(str(candidate_dir))
        if PREDICT_SIGNATURE in signatures:
            inputs = signatures[PREDICT_SIGNATURE]["inputs"]
            rows = [raw_features(example, inputs) for example in queries]
            code, body = server.post_json(
                f"/v1/models/{model_name}:predict", {"signature_name": PREDICT_SIGNATURE, "instances": rows}
            )
            if code != 200:
                failures.append(f"REST predict answered HTTP {code}: {body}")
            else:
                local = loaded.signatures[PREDICT_SIGNATURE](**raw_tensors(rows, inputs))
                output = sorted(local)[0]
                served = [p if isinstance(p, list) else [p] for p in body["predictions"]]
                mine = local[output].numpy().reshape(len(rows), -1).tolist()
                _check_answers(verdict, "rest", f"REST predict ({PREDICT_SIGNATURE})", len(rows), served, mine)
        else:
            failures.append(f"the model has no {PREDICT_SIGNATURE} signature for REST predict")
        if CLASSIFY_SIGNATURE in signatures:
            import grpc
            from tensorflow_serving.apis import classification_pb2, prediction_service_pb2_grpc

            request = classification_pb2.ClassificationRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = CLASSIFY_SIGNATURE
            for example in queries:
                request.input.example_list.examples.add().ParseFromString(example)
            with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
                try:
                    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Classify(request, timeout=30)
                except grpc.RpcError as error:
                    failures.append(f"gRPC classify failed: {error.code().name}: {error.details()}")
                    response = None
            if response is not None:
                served = [[c.score for c in result.classes] for result in response.result.classifications]
                local_scores = loaded.signatures[CLASSIFY_SIGNATURE](inputs=tf.constant(queries))["scores"].numpy()
                scores = local_scores.tolist()
                _check_answers(verdict, "grpc", f"gRPC classify ({CLASSIFY_SIGNATURE})", len(queries), served, scores)
        else:
            failures.append(f"the model has no {CLASSIFY_SIGNATURE} signature for gRPC classify")
    except Exception as error:  # anything unexpected while validating refuses the model, with the reason
        failures.append(f"infra validation failed: {type(error).__name__}: {error}")
    finally:
        server.stop()
        verdict["seconds"] = round(time.monotonic() - started, 2)
    verdict["blessed"] = not failures
    return verdict


def infra_page(verdict: dict[str, Any], *, title: str, summary: str) -> str:
    """The page: blessed or not and why, each check against the real server, how the server ran."""
    facts = [
        (key, verdict[key])
        for key in ("server", "server_command", "load_seconds", "seconds", "warmup", "warmup_replayed")
        if key in verdict
    ]
    checks = [[c["check"], status_cell(c["ok"]), c["detail"]] for c in verdict["checks"]]
    return render(
        "infra.html",
        title=title,
        verdict=Verdict(bool(verdict["blessed"]), summary, verdict["failures"]),
        checks=checks,
        facts=facts,
    )


class Executor(GateExecutor):
    PAGE_SUFFIX = "infra"

    def judge(self, inputs: Artifacts, outputs: Artifacts, properties: dict[str, Any]) -> GateOutcome:
        model = artifact_utils.get_single_instance(inputs["model"])
        examples = artifact_utils.get_single_instance(inputs["examples"])
        warmed = artifact_utils.get_single_instance(outputs["warmed_model"])
        blessing = artifact_utils.get_single_instance(outputs["blessing"])
        warmup_records = int(properties.get("warmup_records") or 16)
        query_examples = int(properties.get("query_examples") or 8)
        model_name = properties.get("model_name") or "model"
        out = Path(blessing.uri)
        out.mkdir(parents=True, exist_ok=True)
        serialized = read_examples(examples, max(warmup_records, query_examples))
        with tempfile.TemporaryDirectory(prefix="infra-validation-") as workdir:
            verdict = validate(
                candidate_dir=Path(path_utils.serving_model_path(model.uri)),
                warmed_dir=Path(path_utils.serving_model_dir(warmed.uri)),
                serialized=serialized,
                model_name=model_name,
                warmup_records=warmup_records,
                query_examples=query_examples,
                timeout_s=float(properties.get("timeout_s") or 120),
                workdir=Path(workdir),
                log_path=out / "server.log",
            )
        blessed = bool(verdict["blessed"])
        blessing.set_int_custom_property("blessed", int(blessed))
        blessing.set_string_custom_property("server", verdict.get("server", ""))
        (out / (BLESSED_FILE if blessed else NOT_BLESSED_FILE)).write_text("")
        (out / "infra_validation.json").write_text(json.dumps(verdict, indent=2, sort_keys=True, default=str))
        warmed.set_int_custom_property("warmup_records", int(verdict.get("warmup_records", 0)))
        summary = (
            f"loaded by {verdict.get('server')} in {verdict.get('load_seconds')} s with "
            f"{verdict.get('warmup_records')} warmup records; REST predict and gRPC classify match the SavedModel"
            if blessed
            else "the model server refused the candidate or answered wrongly: not pushed"
        )
        log.info("infra validation: %s", summary)
        return GateOutcome(
            blessing.uri,
            passed=blessed,
            summary=summary,
            failures=verdict["failures"],
            figures={
                "infra_blessed": blessed,
                "server": verdict.get("server"),
                "load_seconds": verdict.get("load_seconds"),
                "warmup_records": verdict.get("warmup_records"),
                "rest_max_abs_diff": verdict.get("rest_max_abs_diff"),
                "grpc_max_abs_diff": verdict.get("grpc_max_abs_diff"),
            },
            page=infra_page(verdict, title=f"Infra validation of {model_name}", summary=summary),
            page_name="infra_validation.html",
        )
