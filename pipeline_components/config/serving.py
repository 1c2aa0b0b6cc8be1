"""The ``serving`` section of a pipeline configuration: the model's name on the fleet, its contract, the rollout
(verified, or canary-analysed), the approval, the infra validation and the request logging (docs/fleet.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline_components.config.sections import NAME_PATTERN, StrictModel

SignatureDtype = Literal["string", "int64", "int32", "float32", "float64", "bool"]


class SignatureContract(StrictModel):
    inputs: dict[str, SignatureDtype] = Field(
        default_factory=dict, description="Required inputs and their dtypes (every caller sends these)."
    )
    outputs: list[str] = Field(default_factory=list, description="Outputs callers read.")


class ServingContract(StrictModel):
    signatures: dict[str, SignatureContract] = Field(
        default_factory=dict, description="Signature name -> what callers rely on (checked on every candidate)."
    )


class InfraValidationConfig(StrictModel):
    warmup_records: int = Field(
        default=16, ge=1, le=1000, description="PredictionLog records in assets.extra/tf_serving_warmup_requests."
    )
    query_examples: int = Field(default=8, ge=1, le=256, description="Real eval examples each test query sends.")
    timeout_s: int = Field(default=120, ge=5, description="How long the model server may take to load the model.")


class RequestLoggingConfig(StrictModel):
    """The fleet's request logging of this pipeline's model (docs/serving.md, "Request logging on the fleet")."""

    sampling_rate: float = Field(ge=0.0, le=1.0, description="The share of requests logged: 1.0 all, 0 none.")
    directory: str | None = Field(
        default=None, description="Log folder, as the servers see it (default <RUNWAY_HOME>/fleet/request_logs)."
    )


class CanaryConfig(StrictModel):
    """The canary analysis of ``serving.rollout: canary`` (docs/fleet.md "Canary analysis"), named as Flagger names
    it: every ``interval_s`` the candidate is judged against ``stable`` on the same mirrored requests; it is rolled
    back once ``threshold`` intervals failed, and promoted after ``iterations`` intervals."""

    mirror_percent: float = Field(
        default=50, gt=0, le=100, description="Share of the REST predict requests to stable copied to the candidate."
    )
    interval_s: float = Field(default=30, ge=1, description="Length of one analysis interval, in seconds.")
    iterations: int = Field(default=5, ge=1, le=100, description="Intervals to pass before the candidate is promoted.")
    threshold: int = Field(default=2, ge=1, description="Failed intervals that roll the candidate back.")
    min_requests: int = Field(
        default=20, ge=1, description="Mirrored requests an interval needs to be judged (fewer: it fails)."
    )
    min_success_rate: float = Field(
        default=0.99, ge=0, le=1, description="Share of the candidate's requests that must succeed (or stable's share)."
    )
    max_latency_ratio: float = Field(default=1.5, ge=1, description="Largest candidate p99 / stable p99.")
    latency_margin_ms: float = Field(
        default=10, ge=0, description="p99 difference always allowed (below it, latency buckets are noise)."
    )
    max_answer_divergence: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Largest Jensen-Shannon divergence of its answers vs stable's, on the same "
        "requests (from the request logs; needs serving.request_logging).",
    )


class ServingConfig(StrictModel):
    model_name: str = Field(
        pattern=NAME_PATTERN, description="Name under the model store: <store>/<model_name>/<version>."
    )
    # The fleet rollout after the push (docs/fleet.md).
    rollout: bool | Literal["canary"] = Field(
        default=True,
        description="Roll a pushed version out to the serving fleet (task group): true, verified on every instance "
        "then promoted; canary, verified then judged on mirrored live traffic first (serving.canary); false: no.",
    )
    canary: CanaryConfig = Field(default_factory=CanaryConfig, description="The analysis of rollout: canary.")
    retain_versions: int = Field(default=3, ge=1, description="Version folders kept in the store (labelled: always).")
    rollout_timeout_s: float = Field(default=300, gt=0, description="Bound on waiting for AVAILABLE everywhere.")
    verify_tolerance: float = Field(default=1e-4, gt=0, description="Allowed |served - exported| (relative above 1).")
    verify_latency_ms: float = Field(default=1000, gt=0, description="Budget for the median verification request.")
    # The approval gate (docs/fleet.md): a person approves the verified canary before `stable` moves.
    approval: Literal["none", "required"] = Field(
        default="none",
        description="required: the rollout waits on Airflow's Required actions (approve promotes; reject or "
        "timeout puts the previous stable back); none: a verified canary is promoted at once.",
    )
    approval_timeout_h: float = Field(
        default=24, gt=0, le=24 * 14, description="Hours the approval waits; then it counts as a rejection."
    )
    contract: ServingContract = Field(
        default_factory=ServingContract,
        description="The serving contract (docs/models.md): checked against every candidate before a push.",
    )
    infra_validation: InfraValidationConfig = Field(default_factory=InfraValidationConfig)
    request_logging: RequestLoggingConfig | None = Field(
        default=None, description="Log a sampled share of served requests (runway-model-server fleets); absent: off."
    )
