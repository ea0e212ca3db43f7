"""Generate the Python gRPC code and the compatibility baseline from proto/.

Used by ``make proto`` / ``make proto-baseline`` and by tests/test_proto.py,
so that the committed code and the check run exactly the same protoc.

    python proto/generate.py code [OUT_DIR]        # *_pb2.py, *_pb2.pyi, *_pb2_grpc.py
    python proto/generate.py descriptors OUT_FILE  # FileDescriptorSet of the current proto
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
REPO = PROTO_ROOT.parent
PROTO_FILES = ["wiretrace/v1/syndication.proto"]
CODE_OUT = REPO / "src"
BASELINE = PROTO_ROOT / "wiretrace" / "v1" / "baseline.binpb"


def _protoc(*args: str) -> None:
    include = str(resources.files("grpc_tools") / "_proto")
    argv = ["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{include}", *args, *PROTO_FILES]
    if protoc.main(argv) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(argv)}")


def generate_code(out_dir: Path = CODE_OUT) -> None:
    """Write wiretrace/v1/*_pb2*.py[i] under out_dir (the package path mirrors proto/)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _protoc(f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}")


def generate_descriptors(out_file: Path, source_info: bool = False) -> None:
    """Write a FileDescriptorSet of the current proto (imports excluded; comments with source_info)."""
    out_file.parent.mkdir(parents=True, exist_ok=True)
    _protoc(f"--descriptor_set_out={out_file}", *(["--include_source_info"] if source_info else []))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"code", "descriptors"}:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "code":
        generate_code(Path(argv[1]) if len(argv) > 1 else CODE_OUT)
    else:
        generate_descriptors(Path(argv[1]) if len(argv) > 1 else BASELINE)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
