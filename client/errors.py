"""Exceptions the client raises, one class per gRPC status a caller may handle.

Callers catch WiretraceError (or a subclass) instead of grpc.RpcError, and get
the server's message plus the BadRequest field violations in `.details`.
"""

from __future__ import annotations

import re

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


class MessageTooLarge(ResourceExhausted):
    """A gRPC message over a max_message_bytes limit: `.size` and `.limit` in bytes,
    `.by_server` when the server's limit refused it (else this client's)."""

    def __init__(self, code: grpc.StatusCode, message: str, size: int, limit: int, by_server: bool) -> None:
        super().__init__(code, message)
        self.size = size
        self.limit = limit
        self.by_server = by_server


def message_too_large(size: int, limit: int, what: str = "the request") -> MessageTooLarge:
    """A message this client will not send: the wording of the server's max_text_bytes refusals."""
    return MessageTooLarge(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"{what} is {size} bytes as a gRPC message; the limit is {limit} (setting max_message_bytes, "
        "of this client and of the server): split it or raise the limit on both",
        size,
        limit,
        by_server=False,
    )


class Unavailable(WiretraceError):
    """Server not reachable or shutting down; safe to retry later."""


class Unreachable(Unavailable):
    """No connection could be made at all: wrong address, nothing listening, TLS mismatch.

    `.reason` says which, in a few words ("connection refused").
    """

    def __init__(self, code: grpc.StatusCode, message: str, reason: str) -> None:
        super().__init__(code, message)
        self.reason = reason


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


# What gRPC's connection failures say, and what that means to a person.
_CONNECT_FAILURES = (
    ("connection refused", "connection refused"),
    ("domain name not found", "no such host"),
    ("hostname lookup error", "no such host"),
    ("dns resolution failed", "no such host"),
    ("misformatted domain name", "not a valid host name"),
    ("handshake failed", "TLS handshake failed: is the server plaintext, or is the CA right?"),
    ("ssl_error", "TLS handshake failed: is the server plaintext, or is the CA right?"),
    ("socket closed", "the connection was closed at once: does the server use TLS (--tls-ca)?"),
    ("connection reset", "the connection was closed at once: does the server use TLS (--tls-ca)?"),
    ("network is unreachable", "network unreachable"),
    ("no route to host", "no route to host"),
    ("connection timed out", "connection timed out"),
)


def connect_failure(details: str) -> str | None:
    """Why a connection could not be made, from an UNAVAILABLE status's details; None if it is another failure."""
    lowered = details.lower()
    if not lowered.startswith(("failed to connect", "errors resolving", "dns resolution failed")):
        return None
    for needle, reason in _CONNECT_FAILURES:
        if needle in lowered:
            return reason
    return details.split("; last error:")[-1].strip() or "no connection"


_TOO_LARGE = re.compile(r"(CLIENT: )?(Sent|Received) message larger than max \((\d+) vs\. (\d+)\)")


def _too_large(code: grpc.StatusCode, details: str) -> MessageTooLarge | None:
    m = _TOO_LARGE.search(details)
    if m is None:
        return None
    client, direction, size, limit = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
    if not client:  # the server received it
        message = (
            f"the server refused a message of {size} bytes: its limit is {limit} (server setting "
            "max_message_bytes); split what you send or raise that setting on the server"
        )
    elif direction == "Sent":
        return message_too_large(size, limit)
    else:
        message = (
            f"the server's answer is {size} bytes, over this client's max_message_bytes ({limit}): "
            "ask for less (a smaller top_k) or raise the client's limit"
        )
    return MessageTooLarge(code, message, size, limit, by_server=not client)


def from_rpc_error(err: grpc.RpcError, target: str = "") -> WiretraceError:
    """The matching WiretraceError for a grpc.RpcError (which is also a grpc.Call).

    A failure to connect at all becomes Unreachable, naming `target` and the reason
    in words instead of gRPC's internal text.
    """
    call: grpc.Call = err  # type: ignore[assignment]
    code = call.code()
    message = call.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        reason = connect_failure(message)
        if reason is not None:
            where = f" at {target}" if target else ""
            return Unreachable(code, f"cannot reach a wiretrace server{where} ({reason})", reason)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        too_large = _too_large(code, message)
        if too_large is not None:
            return too_large
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
