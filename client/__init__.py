"""wiretrace.client: a typed Python client for the wiretrace gRPC service."""

from wiretrace.client.client import IndexResult, MatchQuery, Rejected, WiretraceClient, story_filter
from wiretrace.client.errors import (
    Cancelled,
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unreachable,
    WiretraceError,
)
from wiretrace.client.target import DEFAULT_PORT, parse_target

__all__ = [
    "DEFAULT_PORT",
    "Cancelled",
    "DeadlineExceeded",
    "IndexResult",
    "InvalidArgument",
    "MatchQuery",
    "NotFound",
    "PermissionDenied",
    "Rejected",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unreachable",
    "WiretraceClient",
    "WiretraceError",
    "parse_target",
    "story_filter",
]
