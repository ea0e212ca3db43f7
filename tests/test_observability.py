"""Metrics at /metrics and one structured log line per request, from a real loopback server."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import make_settings
from tests.synth import NewsGen
from wiretrace.client import InvalidArgument, Unauthenticated, WiretraceClient
from wiretrace.server import WiretraceServer
from wiretrace.server.observability import JsonFormatter


@pytest.fixture
def observed(tmp_path: Path) -> Iterator[WiretraceServer]:
    tokens = tmp_path / "tokens"
    tokens.write_text("tok\n")
    settings = make_settings(tmp_path / "data", metrics_port=0, auth_token_file=str(tokens))
    srv = WiretraceServer(settings).start()
    yield srv
    srv.stop(grace=0)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample at /metrics, keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics(observed: WiretraceServer, news: NewsGen) -> None:
    assert observed.metrics_port is not None
    bodies = [news.article() for _ in range(2)]
    with WiretraceClient(observed.address, token="tok") as client:
        result = client.index_stories(
            [{"story_id": "a", "body": bodies[0]}, {"story_id": "", "body": "x"}, {"story_id": "b", "body": bodies[1]}]
        )
        assert (result.indexed, len(result.rejected)) == (2, 1)
        client.match(bodies[0])
        client.match(bodies[1], request_id="r-2")
        with pytest.raises(InvalidArgument):
            client.match("   ")
    with WiretraceClient(observed.address) as anonymous, pytest.raises(Unauthenticated):
        anonymous.stats()
    with grpc.insecure_channel(observed.address) as channel:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)

    samples = scrape(observed.metrics_port)
    assert all(name.startswith("wiretrace_") for name, _ in samples), sorted({name for name, _ in samples})

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted(labels.items()))))

    requests = {labels: v for (name, labels), v in samples.items() if name == "wiretrace_requests_total"}
    assert requests == {
        (("code", "OK"), ("method", "IndexStoryBatches")): 1.0,
        (("code", "OK"), ("method", "Match")): 2.0,
        (("code", "INVALID_ARGUMENT"), ("method", "Match")): 1.0,
        (("code", "UNAUTHENTICATED"), ("method", "GetStats")): 1.0,
        (("code", "OK"), ("method", "grpc.health.v1.Health/Check")): 1.0,
    }
    errors = {labels: v for (name, labels), v in samples.items() if name == "wiretrace_errors_total"}
    assert errors == {
        (("code", "INVALID_ARGUMENT"), ("method", "Match")): 1.0,
        (("code", "UNAUTHENTICATED"), ("method", "GetStats")): 1.0,
    }
    assert value("wiretrace_request_duration_seconds_count", method="Match") == 3.0
    assert value("wiretrace_request_duration_seconds_bucket", method="Match", le="+Inf") == 3.0
    assert value("wiretrace_stories_indexed_total") == 2.0
    assert value("wiretrace_stories_rejected_total") == 1.0
    assert value("wiretrace_index_stories") == 2.0
    assert (value("wiretrace_index_entries") or 0) > 0
    assert (value("wiretrace_index_bytes") or 0) > 0
    assert (value("wiretrace_disk_bytes") or 0) > 0
    assert value("wiretrace_requests_in_flight") == 0.0


def test_metrics_off_by_default(server: WiretraceServer) -> None:
    assert server.metrics is None and server.metrics_port is None


def test_one_log_line_per_request(observed: WiretraceServer, news: NewsGen, caplog: pytest.LogCaptureFixture) -> None:
    body = news.article()
    with caplog.at_level(logging.INFO, logger="wiretrace.requests"):
        with WiretraceClient(observed.address, token="tok") as client:
            client.index_stories([{"story_id": "a", "body": body}])
            client.match(body, request_id="req-42")
            with pytest.raises(InvalidArgument):
                client.match("", request_id="req-43")
            list(client.match_stream([body, body]))
        with WiretraceClient(observed.address) as anonymous, pytest.raises(Unauthenticated):
            anonymous.match(body, request_id="no-token")
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "wiretrace.requests"]
    for line in lines:
        assert line["peer"].startswith("ipv4:127.0.0.1:")
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
        assert line["level"] == "INFO" and line["message"].startswith(f"rpc method={line['method']} ")
    assert [(line["method"], line["code"], line.get("request_id")) for line in lines] == [
        ("IndexStoryBatches", "OK", None),
        ("Match", "OK", "req-42"),
        ("Match", "INVALID_ARGUMENT", "req-43"),
        ("MatchStream", "OK", None),
        ("Match", "UNAUTHENTICATED", None),  # a refused caller's message is never parsed
    ]
    # The text form carries the same fields.
    assert caplog.records[1].getMessage().startswith("rpc method=Match code=OK duration_ms=")
    assert "request_id='req-42' peer=ipv4:127.0.0.1:" in caplog.records[1].getMessage()
