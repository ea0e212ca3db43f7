"""Fixtures: a real wiretrace gRPC server on 127.0.0.1 (port 0) per test, and generated text.

No mocks: every service test goes through a real channel to a real server
backed by a real store in a temporary directory. Text comes from seeded
generators (tests/synth.py, tests/helpers.py), never from ../shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.helpers import make_settings
from tests.synth import NewsGen
from wiretrace.client import WiretraceClient
from wiretrace.client.client import SyndicationStub
from wiretrace.server import WiretraceServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WiretraceServer]:
    srv = WiretraceServer(make_settings(tmp_path / "data")).start()
    yield srv
    srv.stop(grace=0)


@pytest.fixture
def client(server: WiretraceServer) -> Iterator[WiretraceClient]:
    with WiretraceClient(server.address, timeout=30) as c:
        c.wait_ready()
        yield c


@pytest.fixture
def raw(server: WiretraceServer) -> Iterator[SyndicationStub]:
    """The service's methods on a plain channel, for asserting whole response messages."""
    with grpc.insecure_channel(server.address) as channel:
        yield SyndicationStub(channel)


@pytest.fixture(scope="session")
def news() -> NewsGen:
    return NewsGen(seed=11)
