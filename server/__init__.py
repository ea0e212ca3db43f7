"""wiretrace.server: the gRPC service in front of the engine (``wiretrace serve``)."""

from wiretrace.server.app import WiretraceServer, format_address, serve
from wiretrace.server.servicer import SERVICE_NAME, SyndicationServicer

__all__ = ["SERVICE_NAME", "SyndicationServicer", "WiretraceServer", "format_address", "serve"]
