#!/usr/bin/env python3
"""Writes a copy of template.yaml that deploys binaries already built by
`cargo lambda build --release --arm64`, for `sam deploy` without `sam build`.

template.yaml is written for `sam build`: each Rust function's CodeUri is its
crate directory and `Metadata.BuildMethod: rust-cargolambda` tells SAM to run
cargo-lambda there. When the binaries are built beforehand (one workspace
build, e.g. in CI with a cached target/), this script points every such
function's CodeUri at target/lambda/<binary>/ (the folder holding `bootstrap`)
and drops the build metadata. Everything else is unchanged.

Usage (from the repository root):
  cargo lambda build --release --arm64
  python3 infra/prebuilt_template.py            # writes template.prebuilt.json
  sam deploy --template-file template.prebuilt.json --guided
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cfnlint.decode import decode

REPO = Path(__file__).resolve().parent.parent
RUST_BUILD_METHOD = "rust-cargolambda"


def binary_name(logical_id: str, resource: dict) -> str:
    metadata = resource.get("Metadata") or {}
    binary = (metadata.get("BuildProperties") or {}).get("Binary")
    if binary:
        return binary
    code_uri = (resource.get("Properties") or {}).get("CodeUri")
    if isinstance(code_uri, str) and code_uri.strip("/"):
        # One package per function: the binary is named after the crate directory.
        return Path(code_uri.rstrip("/")).name
    raise ValueError(f"{logical_id}: cannot tell which binary it runs (no BuildProperties.Binary)")


def prebuilt(template: dict, root: Path, verify: bool = True) -> tuple[dict, list[str]]:
    """Returns (rewritten template, problems). Problems are missing binaries."""
    template = json.loads(json.dumps(template))
    problems = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        metadata = resource.get("Metadata") or {}
        if metadata.get("BuildMethod") != RUST_BUILD_METHOD:
            continue
        binary = binary_name(logical_id, resource)
        code_uri = f"target/lambda/{binary}/"
        if verify and not (root / code_uri / "bootstrap").is_file():
            problems.append(
                f"{logical_id}: {code_uri}bootstrap not found; run `cargo lambda build --release --arm64` first"
            )
        resource["Properties"]["CodeUri"] = code_uri
        for key in ("BuildMethod", "BuildProperties"):
            metadata.pop(key, None)
        if metadata:
            resource["Metadata"] = metadata
        else:
            resource.pop("Metadata", None)
    return template, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=REPO / "template.yaml")
    parser.add_argument("--output", type=Path, default=REPO / "template.prebuilt.json")
    parser.add_argument(
        "--no-verify", action="store_true",
        help="do not require target/lambda/<binary>/bootstrap to exist yet",
    )
    args = parser.parse_args(argv)

    source, matches = decode(str(args.template))
    if matches or source is None:
        print(f"prebuilt_template: cannot parse {args.template}: {matches}", file=sys.stderr)
        return 2
    # CodeUri is resolved relative to the template's own directory.
    root = args.output.resolve().parent
    try:
        template, problems = prebuilt(source, root, verify=not args.no_verify)
    except ValueError as exc:
        print(f"prebuilt_template: {exc}", file=sys.stderr)
        return 2
    if problems:
        for problem in problems:
            print(f"prebuilt_template: {problem}", file=sys.stderr)
        return 1
    args.output.write_text(json.dumps(template, indent=2) + "\n")
    print(f"prebuilt_template: wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
