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
    WiretraceError,
)

__all__ = [
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
    "WiretraceClient",
    "WiretraceError",
    "story_filter",
]
