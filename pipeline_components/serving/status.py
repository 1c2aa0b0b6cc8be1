"""TF Serving's status codes: one error type, and how a code maps to an HTTP status.

The mapping is ``ToHTTPStatusCode`` in tensorflow_serving/model_servers/http_server.cc.
"""

from __future__ import annotations

from pipeline_components.errors import ServingError

OK = "OK"
CANCELLED = "CANCELLED"
UNKNOWN = "UNKNOWN"
INVALID_ARGUMENT = "INVALID_ARGUMENT"
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
NOT_FOUND = "NOT_FOUND"
ALREADY_EXISTS = "ALREADY_EXISTS"
PERMISSION_DENIED = "PERMISSION_DENIED"
RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
FAILED_PRECONDITION = "FAILED_PRECONDITION"
ABORTED = "ABORTED"
OUT_OF_RANGE = "OUT_OF_RANGE"
UNIMPLEMENTED = "UNIMPLEMENTED"
INTERNAL = "INTERNAL"
UNAVAILABLE = "UNAVAILABLE"
DATA_LOSS = "DATA_LOSS"
UNAUTHENTICATED = "UNAUTHENTICATED"

# Canonical code numbers (tensorflow/core/protobuf/error_codes.proto == grpc status codes).
CODE_NUMBERS: dict[str, int] = {
    OK: 0,
    CANCELLED: 1,
    UNKNOWN: 2,
    INVALID_ARGUMENT: 3,
    DEADLINE_EXCEEDED: 4,
    NOT_FOUND: 5,
    ALREADY_EXISTS: 6,
    PERMISSION_DENIED: 7,
    RESOURCE_EXHAUSTED: 8,
    FAILED_PRECONDITION: 9,
    ABORTED: 10,
    OUT_OF_RANGE: 11,
    UNIMPLEMENTED: 12,
    INTERNAL: 13,
    UNAVAILABLE: 14,
    DATA_LOSS: 15,
    UNAUTHENTICATED: 16,
}
CODE_NAMES: dict[int, str] = {number: name for name, number in CODE_NUMBERS.items()}

_HTTP_STATUS: dict[str, int] = {
    OK: 200,
    CANCELLED: 499,
    UNKNOWN: 500,
    INVALID_ARGUMENT: 400,
    DEADLINE_EXCEEDED: 504,
    NOT_FOUND: 404,
    ALREADY_EXISTS: 409,
    PERMISSION_DENIED: 403,
    RESOURCE_EXHAUSTED: 429,
    FAILED_PRECONDITION: 400,
    ABORTED: 409,
    OUT_OF_RANGE: 400,
    UNIMPLEMENTED: 501,
    INTERNAL: 500,
    UNAVAILABLE: 503,
    DATA_LOSS: 500,
    UNAUTHENTICATED: 401,
}


def http_status(code: str) -> int:
    """The HTTP status TF Serving's REST API answers for a status code.

    Args:
        code: a canonical status code name, e.g. ``NOT_FOUND``.

    Returns:
        The HTTP status code (500 for a name it does not know).
    """
    return _HTTP_STATUS.get(code, 500)


def invalid_argument(message: str) -> ServingError:
    """An INVALID_ARGUMENT error (HTTP 400)."""
    return ServingError(INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    """A NOT_FOUND error (HTTP 404)."""
    return ServingError(NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    """A FAILED_PRECONDITION error (HTTP 400)."""
    return ServingError(FAILED_PRECONDITION, message)


def internal(message: str) -> ServingError:
    """An INTERNAL error (HTTP 500)."""
    return ServingError(INTERNAL, message)
