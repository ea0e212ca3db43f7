"""What every ``wiretrace`` command that talks to a server shares: its options,
its connection, and one way of saying what went wrong.

A person reads these messages, so each is one line that names what to do;
gRPC's own wording ("failed to connect to all addresses; last error: ...")
never reaches them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from wiretrace.client import WiretraceClient, WiretraceError

DEFAULT_SERVER = "127.0.0.1:50051"
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
F = TypeVar("F", bound=Callable[..., Any])

_ACCESS_OPTIONS = (
    ("--tls-ca", "Connect with TLS, trusting this PEM CA (or the server's self-signed certificate)."),
    ("--token-file", "File whose first line is the bearer token to send (servers run with --auth-token-file)."),
)


def access_options(func: F) -> F:
    """--tls-ca and --token-file (WIRETRACE_TLS_CA/_TOKEN_FILE): how a command that talks to a server gets in."""
    for flag, help_text in reversed(_ACCESS_OPTIONS):
        func = click.option(
            flag,
            type=click.Path(exists=True, dir_okay=False),
            default=None,
            envvar="WIRETRACE_" + flag[2:].replace("-", "_").upper(),
            show_envvar=True,
            help=help_text,
        )(func)
    return func


def server_option(func: F) -> F:
    """--server plus the access options."""
    func = access_options(func)
    return click.option(
        "--server",
        default=DEFAULT_SERVER,
        envvar="WIRETRACE_SERVER",
        show_default=True,
        show_envvar=True,
        help="HOST[:PORT] of a running wiretrace server (port 50051 if left out).",
    )(func)


def message_size_option(func: F) -> F:
    """--max-message-bytes, read from the server's own variable so both sides agree by default."""
    return click.option(
        "--max-message-bytes",
        type=click.IntRange(min=1024),
        default=DEFAULT_MAX_MESSAGE_BYTES,
        envvar="WIRETRACE_MAX_MESSAGE_BYTES",
        show_default=True,
        show_envvar=True,
        help="Largest gRPC message to send or accept; match the server's --max-message-bytes.",
    )(func)


def connect(
    target: str,
    token_file: str | None,
    tls_ca: str | None,
    timeout: float | None = 10.0,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> WiretraceClient:
    """A WiretraceClient for `target` with the command's access options; a bad address is a usage error."""
    from wiretrace.client import WiretraceClient
    from wiretrace.client.client import read_token_file

    try:
        token = read_token_file(token_file) if token_file else None
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"--token-file: {exc}") from exc
    try:
        return WiretraceClient(target, timeout=timeout, token=token, tls_ca=tls_ca, max_message_bytes=max_message_bytes)
    except ValueError as exc:
        raise click.UsageError(f"--server {exc}") from exc


def explain(exc: WiretraceError, target: str) -> str:
    """One line saying what went wrong and what to do about it."""
    import grpc

    from wiretrace.client import Unreachable

    code = exc.code
    if isinstance(exc, Unreachable):
        return (
            f"{exc.message}: is `wiretrace serve` running there? "
            "Give its address with --server HOST:PORT or WIRETRACE_SERVER"
        )
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f"the server at {target} refused the call ({exc.message}): pass --token-file with a token it accepts"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer from the server at {target} in time ({exc.message}): it may be overloaded; try again"
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"the server at {target} is unavailable ({exc.message}): it may be stopping; try again shortly"
    if code == grpc.StatusCode.CANCELLED:
        return f"the call was cancelled ({exc.message})"
    if code in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.NOT_FOUND,
    ):
        return exc.message
    return f"the server at {target} answered {code.name}: {exc.message}"


@contextlib.contextmanager
def talking_to(target: str) -> Iterator[None]:
    """Turn the client's errors into `Error: ...` lines (exit status 1)."""
    from wiretrace.client import WiretraceError

    try:
        yield
    except WiretraceError as exc:
        raise click.ClickException(explain(exc, target)) from exc


def quiet_grpc_iterator_errors() -> None:
    """The client re-raises an exception from a request iterator itself; gRPC's own
    logging of it (a traceback under "Exception iterating requests!") says nothing more."""
    logging.getLogger("grpc._channel").setLevel(logging.CRITICAL)


def plural(n: int, one: str, many: str | None = None) -> str:
    """'1 story', '2 stories', '1,234 stories'."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def store_unreachable(exc: BaseException, store: str) -> str | None:
    """`wiretrace serve --store redis://...` with no Redis there: what to say instead of a traceback."""
    try:
        import redis
    except ImportError:
        return None
    if not isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return None
    from urllib.parse import urlsplit

    url = urlsplit(store)
    where = url.path if url.scheme == "unix" else f"{url.hostname or 'localhost'}:{url.port or 6379}"
    text = str(exc).lower()
    if "refused" in text:
        reason = "connection refused"
    elif "timeout" in text or "timed out" in text or isinstance(exc, redis.TimeoutError):
        reason = "no answer in time"
    elif "name or service not known" in text or "nodename nor servname" in text or "resolution" in text:
        reason = "no such host"
    elif "no such file" in text:
        reason = "no such socket"
    else:
        reason = str(exc).rstrip(".")
    return f"cannot reach Redis at {where} ({reason}): is redis-server running? (--store {store})"
