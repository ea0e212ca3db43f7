"""The committed generated code and the API's compatibility with its baseline."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf import descriptor_pb2

REPO = Path(__file__).resolve().parent.parent
GENERATED = ["syndication_pb2.py", "syndication_pb2.pyi", "syndication_pb2_grpc.py"]


def _generate_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wiretrace_proto_generate", REPO / "proto" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    pytest.importorskip("grpc_tools")
    return _generate_module()


def _descriptors(generate: ModuleType, tmp_path: Path, source_info: bool = False) -> descriptor_pb2.FileDescriptorSet:
    out = tmp_path / "current.binpb"
    generate.generate_descriptors(out, source_info=source_info)
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def test_generated_code_is_up_to_date(generate: ModuleType, tmp_path: Path) -> None:
    generate.generate_code(tmp_path)
    for name in GENERATED:
        fresh = (tmp_path / "wiretrace" / "v1" / name).read_text()
        committed = (REPO / "src" / "wiretrace" / "v1" / name).read_text()
        assert fresh == committed, f"src/wiretrace/v1/{name} is stale: run `make proto` and commit"


def _inventory(fds: descriptor_pb2.FileDescriptorSet) -> dict[str, tuple[object, ...]]:
    """Every message field, enum value and RPC, keyed by full name, with its wire-relevant identity."""
    items: dict[str, tuple[object, ...]] = {}

    def messages(prefix: str, msgs: list[descriptor_pb2.DescriptorProto]) -> None:
        for m in msgs:
            name = f"{prefix}.{m.name}"
            items[name] = ("message",)
            for f in m.field:
                items[f"{name}#{f.number}"] = ("field", f.name, f.type, f.label, f.type_name)
            messages(name, list(m.nested_type))
            enums(name, list(m.enum_type))

    def enums(prefix: str, es: list[descriptor_pb2.EnumDescriptorProto]) -> None:
        for e in es:
            name = f"{prefix}.{e.name}"
            items[name] = ("enum",)
            for v in e.value:
                items[f"{name}={v.number}"] = ("value", v.name)

    for file in fds.file:
        messages(file.package, list(file.message_type))
        enums(file.package, list(file.enum_type))
        for s in file.service:
            items[f"{file.package}.{s.name}"] = ("service",)
            for rpc in s.method:
                items[f"{file.package}.{s.name}/{rpc.name}"] = (
                    "rpc", rpc.input_type, rpc.output_type, rpc.client_streaming, rpc.server_streaming,
                )  # fmt: skip
    return items


def test_no_breaking_change_since_baseline(generate: ModuleType, tmp_path: Path) -> None:
    """Additions are fine; anything in the baseline must still exist with the same number, name and type.

    After an intended, released addition, refresh the baseline with `make proto-baseline`.
    """
    baseline = descriptor_pb2.FileDescriptorSet.FromString(generate.BASELINE.read_bytes())
    old = _inventory(baseline)
    new = _inventory(_descriptors(generate, tmp_path))
    assert len(old) > 50
    broken = {key: (was, new.get(key, "removed")) for key, was in old.items() if new.get(key) != was}
    assert not broken, f"breaking changes to wiretrace.v1: {broken}"


def test_inventory_detects_a_renumbered_field(generate: ModuleType, tmp_path: Path) -> None:
    fds = _descriptors(generate, tmp_path)
    before = _inventory(fds)
    field = next(m for m in fds.file[0].message_type if m.name == "MatchRequest").field[0]
    field.number = 99
    assert _inventory(fds) != before


def test_every_field_enum_value_and_rpc_is_documented(generate: ModuleType, tmp_path: Path) -> None:
    [file] = _descriptors(generate, tmp_path, source_info=True).file
    commented = {tuple(loc.path) for loc in file.source_code_info.location if loc.leading_comments.strip()}
    missing: list[str] = []
    for i, m in enumerate(file.message_type):
        for j, f in enumerate(m.field):
            if (4, i, 2, j) not in commented:
                missing.append(f"{m.name}.{f.name}")
    for i, e in enumerate(file.enum_type):
        if (5, i) not in commented:
            missing.append(e.name)
        for j, v in enumerate(e.value):
            if (5, i, 2, j) not in commented:
                missing.append(f"{e.name}.{v.name}")
    for i, s in enumerate(file.service):
        if (6, i) not in commented:
            missing.append(s.name)
        for j, rpc in enumerate(s.method):
            if (6, i, 2, j) not in commented:
                missing.append(f"{s.name}.{rpc.name}")
    assert not missing, f"undocumented in syndication.proto: {missing}"


def test_engine_verdicts_mirror_the_proto_enum() -> None:
    from wiretrace.types import Verdict
    from wiretrace.v1 import syndication_pb2 as pb

    assert {v.value: v.name for v in Verdict} == {
        n: pb.Verdict.Name(n).removeprefix("VERDICT_") for n in pb.Verdict.values()
    }
