"""Access control: TLS server credentials and bearer tokens checked by an interceptor.

Tokens travel in ``authorization: Bearer TOKEN`` metadata. The check sits in a
server interceptor so no RPC can forget it; the health service and reflection
stay open, because load balancers and ``grpcurl list`` probe them without
credentials and they reveal nothing stored.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from wiretrace.config import ServerSettings

# Method-name prefixes served without a token.
OPEN_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

if TYPE_CHECKING:
    Interceptor = grpc.ServerInterceptor[Any, Any]
else:  # not subscriptable at run time
    Interceptor = grpc.ServerInterceptor

HandlerFactory = Callable[..., "grpc.RpcMethodHandler[Any, Any]"]
_FACTORIES: dict[tuple[bool, bool], HandlerFactory] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def handler_factory(handler: grpc.RpcMethodHandler[Any, Any]) -> HandlerFactory:
    """The grpc.*_rpc_method_handler that builds a handler of the same shape."""
    return _FACTORIES[bool(handler.request_streaming), bool(handler.response_streaming)]


def handler_behavior(handler: grpc.RpcMethodHandler[Any, Any]) -> Callable[..., Any]:
    """The one behaviour callable a handler carries (unary_unary, stream_unary, ...)."""
    kind = ("stream" if handler.request_streaming else "unary") + "_"
    kind += "stream" if handler.response_streaming else "unary"
    behavior: Callable[..., Any] = getattr(handler, kind)
    return behavior


def load_tokens(path: str | Path) -> list[str]:
    """Accepted tokens: one per line; blank lines and lines starting with # are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise OSError(f"cannot read auth token file {path}: {exc.strerror or exc}") from exc
    tokens = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not tokens:
        raise ValueError(f"auth token file {path} holds no token (one per line)")
    for token in tokens:
        if any(ch.isspace() or not ch.isprintable() for ch in token):
            raise ValueError(f"auth token file {path}: a token contains whitespace or a control character")
    return tokens


def server_credentials(settings: ServerSettings) -> grpc.ServerCredentials | None:
    """TLS credentials from --tls-cert/--tls-key, or None for plaintext."""
    if not settings.tls_cert and not settings.tls_key:
        return None
    if not (settings.tls_cert and settings.tls_key):
        raise ValueError("--tls-cert and --tls-key go together: give both, or neither for plaintext")
    pems = []
    for what, path in (("key", settings.tls_key), ("certificate", settings.tls_cert)):
        try:
            pems.append(Path(path).read_bytes())
        except OSError as exc:
            raise OSError(f"cannot read TLS {what} {path}: {exc.strerror or exc}") from exc
    key, cert = pems
    return grpc.ssl_server_credentials([(key, cert)])


class BearerTokenInterceptor(Interceptor):
    """Refuses calls without a known bearer token with UNAUTHENTICATED, before any handler runs."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self._tokens = [t.encode("utf-8") for t in tokens]

    def problem(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
        """Why the call's credentials are not accepted, or None."""
        values = [v for k, v in metadata or () if k == "authorization"]
        if not values:
            return (
                "missing credentials: this server requires 'authorization: Bearer <token>' metadata "
                "(client option token, CLI --token-file)"
            )
        value = values[0] if isinstance(values[0], str) else values[0].decode("utf-8", "replace")
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "malformed authorization metadata: expected 'Bearer <token>'"
        given = token.strip().encode("utf-8")
        # Compare with every token, in constant time, so timing says nothing about which one is close.
        known = False
        for accepted in self._tokens:
            known |= hmac.compare_digest(given, accepted)
        return None if known else "invalid bearer token"

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if handler_call_details.method.startswith(OPEN_PREFIXES):
            return continuation(handler_call_details)
        problem = self.problem(handler_call_details.invocation_metadata)
        handler = continuation(handler_call_details)
        if problem is None or handler is None:
            return handler
        return refusal(handler, grpc.StatusCode.UNAUTHENTICATED, problem)


def refusal(
    handler: grpc.RpcMethodHandler[Any, Any], code: grpc.StatusCode, message: str
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape as `handler` that answers `code` without reading the request."""

    def refuse(_request: object, context: grpc.ServicerContext) -> None:
        context.abort(code, message)

    # No deserializer: a refused caller's payload is never parsed.
    return handler_factory(handler)(refuse)
