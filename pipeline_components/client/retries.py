"""Which failures the client retries, how patiently, and the typed error each one becomes.

Transient (retried): gRPC ``UNAVAILABLE``, HTTP 502/503, a connection refused, reset or closed mid-request.
Final (raised at once): ``INVALID_ARGUMENT`` / ``FAILED_PRECONDITION`` / ``OUT_OF_RANGE`` / HTTP 400
(``InvalidRequestError``), ``NOT_FOUND`` / 404 (``ModelNotFoundError``), a timeout (``ServingTimeoutError``: the
server may still be working on it; retrying would pile up load), anything else (``ServingClientError``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pipeline_components.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    ServingClientError,
    ServingTimeoutError,
    ServingUnavailableError,
)
from pipeline_components.serving_protos.dtypes import EncodingError

T = TypeVar("T")

# TF Serving's HTTP status for each canonical code (http_server.cc ToHTTPStatusCode), inverted for REST answers.
CODE_OF_HTTP = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",  # a load balancer whose upstream failed
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
RETRYABLE_CODES = frozenset({"UNAVAILABLE"})
RETRYABLE_HTTP = frozenset({502, 503})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure.

    ``attempts`` counts the first try; the wait before try ``n+1`` is ``min(max_backoff_s, initial_backoff_s *
    multiplier**(n-1))``, scaled by a random factor in [0.5, 1] (jitter) so that many clients do not retry in step.
    """

    attempts: int = 5
    initial_backoff_s: float = 0.05
    multiplier: float = 2.0
    max_backoff_s: float = 1.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")

    def backoff_s(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        wait = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))
        return wait * random.uniform(0.5, 1.0) if self.jitter else wait


NO_RETRY = RetryPolicy(attempts=1)


@dataclass
class Attempt:
    """What one try produced, for the retry loop: nothing wrong, or an error and whether to try again."""

    error: ServingClientError | None = None
    retryable: bool = False


def typed_error(code: str, text: str, **where: Any) -> ServingClientError:
    """The client error class of a canonical code, e.g. ``NOT_FOUND`` -> ``ModelNotFoundError``."""
    if code == "UNAVAILABLE":
        return ServingUnavailableError(code, text, **where)
    if code == "DEADLINE_EXCEEDED":
        return ServingTimeoutError(code, text, **where)
    if code == "NOT_FOUND":
        return ModelNotFoundError(code, text, **where)
    if code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE"):
        return InvalidRequestError(code, text, **where)
    return ServingClientError(code, text, **where)


def encoded(build: Callable[[], T]) -> T:
    """Run an encoder (``serving_protos``); what does not encode is the caller's bad request, said before sending.

    Raises:
        InvalidRequestError: the encoder's message (which feature, which value, which dtype).
    """
    try:
        return build()
    except EncodingError as error:
        raise InvalidRequestError("INVALID_ARGUMENT", str(error)) from None


def with_retries(call: Callable[[], tuple[T | None, Attempt]], policy: RetryPolicy) -> tuple[T, int]:
    """Run ``call`` until it succeeds, fails for good, or the policy's attempts are spent.

    Returns:
        (the result, the number of tries).

    Raises:
        ServingClientError: the last failure, with ``attempts`` set (and said in the message when it was retried).
    """
    attempt = 0
    while True:
        attempt += 1
        result, outcome = call()
        if outcome.error is None:
            assert result is not None
            return result, attempt
        if not outcome.retryable or attempt >= policy.attempts:
            outcome.error.attempts = attempt
            if outcome.retryable:
                outcome.error.message = outcome.error.args[0] + f" (after {attempt} attempt(s))"
                outcome.error.args = (outcome.error.message,)
            raise outcome.error
        time.sleep(policy.backoff_s(attempt))
