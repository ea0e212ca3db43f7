"""Exceptions the client raises, one class per gRPC status a caller may handle.

Callers catch WiretraceError (or a subclass) instead of grpc.RpcError, and get
the server's message plus the BadRequest field violations in `.details`.
"""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class WiretraceError(Exception):
    """A failed call: `.code` is the gRPC status, `.details` the field violations ((field, description) pairs)."""

    def __init__(self, code: grpc.StatusCode, message: str, details: list[tuple[str, str]] | None = None) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.details: list[tuple[str, str]] = details or []


class InvalidArgument(WiretraceError):
    """The request was malformed; `.details` names the field."""


class NotFound(WiretraceError):
    """No story with that id."""


class ResourceExhausted(WiretraceError):
    """Over a server limit (text size, message size, stream length, concurrency)."""


class Unavailable(WiretraceError):
    """Server not reachable or shutting down; safe to retry later."""


class DeadlineExceeded(WiretraceError):
    """The call took longer than its deadline."""


class Unauthenticated(WiretraceError):
    """Credentials missing or rejected."""


class PermissionDenied(WiretraceError):
    """Credentials valid but not allowed to do this."""


class Cancelled(WiretraceError):
    """The call was cancelled."""


_BY_CODE: dict[grpc.StatusCode, type[WiretraceError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.CANCELLED: Cancelled,
}


def from_rpc_error(err: grpc.RpcError) -> WiretraceError:
    """The matching WiretraceError for a grpc.RpcError (which is also a grpc.Call)."""
    call: grpc.Call = err  # type: ignore[assignment]
    code = call.code()
    message = call.details() or ""
    violations: list[tuple[str, str]] = []
    try:
        status = rpc_status.from_call(call)
    except ValueError:  # malformed status trailer; keep the plain message
        status = None
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations.extend((v.field, v.description) for v in bad.field_violations)
    return _BY_CODE.get(code, WiretraceError)(code, message, violations)
