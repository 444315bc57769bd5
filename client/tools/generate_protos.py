"""Regenerate the Python code for proto/usermgmt/v1 into the client package.

Usage: python client/tools/generate_protos.py [OUTPUT_DIR]

Proto path equals import path: proto/usermgmt/v1/x.proto becomes usermgmt/v1/x_pb2.py (plus the
gRPC stubs and mypy-protobuf .pyi stubs) under OUTPUT_DIR, by default client/src.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto"
DEFAULT_OUTPUT = REPO_ROOT / "client" / "src"


def proto_files() -> list[Path]:
    """Every .proto file of the API, in a stable order."""
    return sorted((PROTO_ROOT / "usermgmt").rglob("*.proto"))


def generate(output_dir: Path) -> None:
    """Run protoc with the Python, gRPC and mypy plugins into ``output_dir``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    well_known = Path(protoc.__file__).parent / "_proto"
    scripts = Path(sys.executable).parent
    args = [
        "grpc_tools.protoc",
        f"--plugin=protoc-gen-mypy={scripts / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={scripts / 'protoc-gen-mypy_grpc'}",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={well_known}",
        f"--python_out={output_dir}",
        f"--grpc_python_out={output_dir}",
        f"--mypy_out={output_dir}",
        f"--mypy_grpc_out={output_dir}",
        *(str(path.relative_to(PROTO_ROOT)) for path in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT)
