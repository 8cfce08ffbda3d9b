"""Generate the Python stubs (with .pyi) and Envoy's descriptor set from protos/.

Run by `make build`; never edit the output by hand. `check` regenerates into a
temporary folder and reports any difference from what is built (the tests use it).

    python -m services.mesh.codegen [--out build/gen] [--check]
"""

from __future__ import annotations

import argparse
import filecmp
import os
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "protos"
DEFAULT_OUT = REPO_ROOT / "build" / "gen"
# Types that travel inside google.protobuf.Any in error details: the
# transcoder must know them to render errors as JSON.
# Written into the same folder by other generators from what this one makes
# (services.mesh.openapi): not ours to call stale.
OTHER_GENERATORS_FILES = ("openapi.json",)
EXTRA_DESCRIPTOR_PROTOS = ("google/rpc/error_details.proto", "google/rpc/status.proto")


def _include_dirs() -> list[str]:
    from google.api import annotations_pb2  # googleapis-common-protos ships the .proto sources

    googleapis = Path(annotations_pb2.__file__).resolve().parents[2]
    well_known = Path(grpc_tools.__file__).resolve().parent / "_proto"
    return [str(PROTO_ROOT), str(googleapis), str(well_known)]


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))


def _protoc(args: list[str]) -> None:
    argv = ["grpc_tools.protoc", *(f"-I{d}" for d in _include_dirs()), *args]
    if protoc.main(argv) != 0:
        raise SystemExit(f"protoc failed: {' '.join(argv)}")


def generate(out: Path) -> None:
    python_out = out / "python"
    python_out.mkdir(parents=True, exist_ok=True)
    files = proto_files()
    _protoc([f"--python_out={python_out}", f"--pyi_out={python_out}", f"--grpc_python_out={python_out}", *files])
    # Generated modules live in namespace-free packages: add the __init__.py files.
    for folder in [python_out / "pictor", *(p for p in (python_out / "pictor").rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    _protoc(
        [f"--descriptor_set_out={out / 'pictor.pb'}", "--include_imports", "--include_source_info", *files,
         *EXTRA_DESCRIPTOR_PROTOS]
    )


def stale_files(built: Path) -> list[str]:
    """Files that differ between `built` and a fresh generation (empty when current)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        differences = []
        for path in sorted(p for p in fresh.rglob("*") if p.is_file()):
            rel = path.relative_to(fresh)
            if not (built / rel).is_file() or not filecmp.cmp(path, built / rel, shallow=False):
                differences.append(str(rel))
        for path in sorted(p for p in built.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                           and str(p.relative_to(built)) not in OTHER_GENERATORS_FILES):
            if not (fresh / path.relative_to(built)).exists():
                differences.append(f"{path.relative_to(built)} (no longer generated)")
        return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="fail when the built output is stale")
    args = parser.parse_args()
    if args.check:
        stale = stale_files(args.out)
        if stale:
            sys.exit("stale generated files (run `make build`): " + ", ".join(stale))
        return
    generate(args.out)
    print(f"generated {len(proto_files())} protos into {os.path.relpath(args.out, REPO_ROOT)}")


if __name__ == "__main__":
    main()
