"""Access control: TLS with generated certificates, bearer tokens, and what stays open.

Certificates are made here with `cryptography` (a throwaway CA and a server
certificate for 127.0.0.1/localhost), never shipped in the repo.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.helpers import make_settings, stories
from tests.synth import NewsGen
from wiretrace.cli import main
from wiretrace.client import Unauthenticated, Unavailable, WiretraceClient
from wiretrace.client.client import SyndicationStub
from wiretrace.server import SERVICE_NAME, WiretraceServer
from wiretrace.v1 import syndication_pb2 as pb

TOKEN = "s3cret-token-for-tests"
NO_FILE = "No such file or directory"
MISSING = (
    "missing credentials: this server requires 'authorization: Bearer <token>' metadata "
    "(client option token, CLI --token-file)"
)


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(directory: Path) -> Pki:
    """A CA and a server certificate it signed, valid for 127.0.0.1 and localhost, as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("wiretrace test CA"))
        .issuer_name(_name("wiretrace test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"# accepted tokens\nother-token\n\n{TOKEN}\n")
    return path


@pytest.fixture
def secure(tmp_path: Path, pki: Pki, token_file: Path) -> Iterator[WiretraceServer]:
    settings = make_settings(
        tmp_path / "data", tls_cert=str(pki.cert), tls_key=str(pki.key), auth_token_file=str(token_file)
    )
    srv = WiretraceServer(settings).start()
    yield srv
    srv.stop(grace=0)


@pytest.fixture
def tls_channel(secure: WiretraceServer, pki: Pki) -> Iterator[grpc.Channel]:
    creds = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
    with grpc.secure_channel(secure.address, creds) as channel:
        yield channel


def _call_every_rpc(stub: SyndicationStub, metadata: tuple[tuple[str, str], ...]) -> dict[str, grpc.RpcError]:
    """Each of the six RPCs once; the error each raised (every one must raise)."""
    calls = {
        "IndexStories": lambda: stub.IndexStories(iter([pb.Story(story_id="a", body="b c d")]), metadata=metadata),
        "DeleteStories": lambda: stub.DeleteStories(pb.DeleteStoriesRequest(story_ids=["a"]), metadata=metadata),
        "GetStory": lambda: stub.GetStory(pb.GetStoryRequest(story_id="a"), metadata=metadata),
        "GetStats": lambda: stub.GetStats(pb.GetStatsRequest(), metadata=metadata),
        "Match": lambda: stub.Match(pb.MatchRequest(text="some words"), metadata=metadata),
        "MatchStream": lambda: list(stub.MatchStream(iter([pb.MatchRequest(text="x")]), metadata=metadata)),
    }
    errors: dict[str, grpc.RpcError] = {}
    for name, call in calls.items():
        with pytest.raises(grpc.RpcError) as err:
            call()
        errors[name] = err.value
    return errors


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ((), MISSING),
        ((("authorization", "Bearer wrong-token"),), "invalid bearer token"),
        ((("authorization", f"Bearer {TOKEN}x"),), "invalid bearer token"),
        ((("authorization", f"Basic {TOKEN}"),), "malformed authorization metadata: expected 'Bearer <token>'"),
        ((("authorization", "Bearer "),), "malformed authorization metadata: expected 'Bearer <token>'"),
    ],
)
def test_every_rpc_needs_a_valid_token(
    tls_channel: grpc.Channel, secure: WiretraceServer, metadata: tuple[tuple[str, str], ...], message: str
) -> None:
    stub = SyndicationStub(tls_channel)
    errors = _call_every_rpc(stub, metadata)
    assert {name: (e.code(), e.details()) for name, e in errors.items()} == {
        name: (grpc.StatusCode.UNAUTHENTICATED, message) for name in errors
    }
    # Nothing reached the store.
    good = (("authorization", f"Bearer {TOKEN}"),)
    assert stub.GetStats(pb.GetStatsRequest(), metadata=good).story_count == 0


def test_tls_and_token_roundtrip(secure: WiretraceServer, pki: Pki, news: NewsGen) -> None:
    wire = stories(news, 5)
    with WiretraceClient(secure.address, token=TOKEN, tls_ca=pki.ca) as client:
        client.wait_ready()
        assert client.index_stories(wire).indexed == 5
        assert client.get_story("s3") == wire[3]
        assert client.match(wire[2].body, top_k=1).matches[0].story_id == "s2"
        assert [rid for rid, _ in client.match_stream([wire[0].body, wire[1].body])] == ["0", "1"]
    # The typed client raises Unauthenticated with the server's message.
    with WiretraceClient(secure.address, tls_ca=pki.ca) as client, pytest.raises(Unauthenticated) as err:
        client.stats()
    assert err.value.message == MISSING


def test_health_and_reflection_stay_open(tls_channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(tls_channel)
    for name in ("", SERVICE_NAME):
        assert health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5) == (
            health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
        )
    stub = reflection_pb2_grpc.ServerReflectionStub(tls_channel)
    [reply] = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    assert SERVICE_NAME in {s.name for s in reply.list_services_response.service}


def test_plaintext_client_cannot_talk_to_tls_server(secure: WiretraceServer) -> None:
    with WiretraceClient(secure.address, token=TOKEN, timeout=3) as client, pytest.raises(Unavailable):
        client.stats()


def test_wrong_ca_is_refused(secure: WiretraceServer, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other")
    with WiretraceClient(secure.address, token=TOKEN, tls_ca=other.ca, timeout=3) as client, pytest.raises(Unavailable):
        client.stats()


def test_token_without_tls_on_loopback(tmp_path: Path, token_file: Path) -> None:
    settings = make_settings(tmp_path / "data", auth_token_file=str(token_file))
    with WiretraceServer(settings) as srv:
        with WiretraceClient(srv.address, token="other-token") as client:
            assert client.stats()[0].stories == 0
        with WiretraceClient(srv.address) as client, pytest.raises(Unauthenticated):
            client.stats()


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"tls_cert": "cert.pem"}, "--tls-cert and --tls-key go together: give both, or neither for plaintext"),
        ({"tls_cert": "missing.pem", "tls_key": "missing.key"}, f"cannot read TLS key missing.key: {NO_FILE}"),
        ({"auth_token_file": "missing-tokens"}, f"cannot read auth token file missing-tokens: {NO_FILE}"),
        ({"auth_token_file": "empty-tokens"}, "auth token file empty-tokens holds no token (one per line)"),
    ],
)  # fmt: skip
def test_bad_access_settings_stop_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: dict[str, str], error: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty-tokens").write_text("\n# none yet\n")
    with pytest.raises((OSError, ValueError)) as err:
        WiretraceServer(make_settings(tmp_path / "data", **overrides))
    assert str(err.value) == error
    assert not (tmp_path / "data").exists()  # refused before the store was opened
    args = ["serve", "--data-dir", str(tmp_path / "data"), "--port", "0"]
    for name, value in overrides.items():
        args += ["--" + name.replace("_", "-"), value]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert f"Error: {error}" in result.output


def test_cli_with_token_file_and_ca(secure: WiretraceServer, pki: Pki, tmp_path: Path, news: NewsGen) -> None:
    client_token = tmp_path / "my-token"
    client_token.write_text(f"{TOKEN}\n")
    wire = tmp_path / "wire.jsonl"
    body = news.article()
    wire.write_text(json.dumps({"story_id": "c1", "body": body}) + "\n")
    runner = CliRunner()
    flags = ["--server", secure.address, "--tls-ca", str(pki.ca)]
    result = runner.invoke(main, ["index", str(wire), *flags, "--token-file", str(client_token)])
    assert result.exit_code == 0, result.output
    assert "indexed 1 story in" in result.output

    env = {"WIRETRACE_TOKEN_FILE": str(client_token)}
    result = runner.invoke(main, ["match", "-", *flags, "--top-k", "1"], input=body, env=env)
    assert result.exit_code == 0, result.output
    assert "1. c1" in result.output

    result = runner.invoke(main, ["match", "-", *flags], input=body)
    assert result.exit_code == 1
    assert f"Error: the server at {secure.address} refused the call ({MISSING}): pass --token-file" in result.output
