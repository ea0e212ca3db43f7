"""What a person types as a server address, turned into a gRPC target.

gRPC's own rules surprise people: ``localhost`` means port 443, and
``http://127.0.0.1:50051`` is looked up as a host name. Here a missing port
is the server's default (50051), ``http://`` and ``grpc://`` are dropped,
``https://`` and ``grpcs://`` mean TLS, and anything else that cannot be an
address is refused with a message saying what to type instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PORT = 50051

# gRPC's own target syntaxes, passed through untouched.
_GRPC_SCHEMES = ("unix:", "unix-abstract:", "dns:", "ipv4:", "ipv6:", "vsock:")
_PLAIN_SCHEMES = ("http://", "grpc://")
_TLS_SCHEMES = ("https://", "grpcs://")
_HOST = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Target:
    """A gRPC target string and whether the address asked for TLS (https://)."""

    address: str
    tls: bool = False


def parse_target(text: str) -> Target:
    """HOST[:PORT], [IPv6][:PORT], an http(s):// URL of one, or a gRPC target such as unix:PATH.

    Raises ValueError with a message that says what an address looks like.
    """
    value = text.strip()
    if not value:
        raise ValueError("the server address is empty; give HOST:PORT, e.g. 127.0.0.1:50051")
    lowered = value.lower()
    if lowered.startswith(_GRPC_SCHEMES):
        return Target(value)
    tls = False
    for scheme in (*_PLAIN_SCHEMES, *_TLS_SCHEMES):
        if lowered.startswith(scheme):
            tls = scheme in _TLS_SCHEMES
            value = value[len(scheme) :]
            break
    else:
        if "://" in value:
            scheme = value.split("://", 1)[0]
            raise ValueError(f"{text!r}: {scheme}:// is not a way to reach a wiretrace server; give HOST:PORT")
    value = value.rstrip("/")
    if "/" in value:
        raise ValueError(f"{text!r}: a server address has no path; give HOST:PORT, e.g. 127.0.0.1:50051")
    host, port = _split_host_port(value, text)
    return Target(f"{host}:{port}", tls)


def _split_host_port(value: str, text: str) -> tuple[str, int]:
    if value.startswith("["):  # [IPv6] or [IPv6]:PORT
        end = value.find("]")
        if end < 0:
            raise ValueError(f"{text!r}: unclosed '[' in an IPv6 address; write [ADDRESS]:PORT")
        host, rest = value[: end + 1], value[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"{text!r}: expected :PORT after the IPv6 address")
        port_text = rest[1:] if rest else ""
    elif value.count(":") > 1:  # a bare IPv6 address: it cannot carry a port unbracketed
        host, port_text = f"[{value}]", ""
    else:
        host, _, port_text = value.partition(":")
        if not host or not _HOST.match(host):
            raise ValueError(f"{text!r}: {host!r} is not a host name or IP address; give HOST:PORT")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535, not {port_text!r}")
    return host, int(port_text)
