"""Request errors carried to the client as a status plus google.rpc.BadRequest.

Handlers raise RequestError; the servicer turns it into a rich status, so
every rejection names the field and says what to change (never INTERNAL).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class Violation:
    field: str
    description: str


@dataclass
class RequestError(Exception):
    code: grpc.StatusCode
    message: str
    violations: list[Violation] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> grpc.Status:
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        if self.violations:
            detail = any_pb2.Any()
            detail.Pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                        for v in self.violations
                    ]
                )
            )
            status.details.append(detail)
        result: grpc.Status = rpc_status.to_status(status)
        return result


def invalid(field_name: str, description: str, *, prefix: str = "") -> RequestError:
    """INVALID_ARGUMENT for one field; `prefix` gives context such as a request id."""
    return RequestError(
        grpc.StatusCode.INVALID_ARGUMENT, f"{prefix}{field_name}: {description}", [Violation(field_name, description)]
    )


def too_large(field_name: str, description: str, *, prefix: str = "") -> RequestError:
    return RequestError(
        grpc.StatusCode.RESOURCE_EXHAUSTED, f"{prefix}{field_name}: {description}", [Violation(field_name, description)]
    )
