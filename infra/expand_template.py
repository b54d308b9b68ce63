#!/usr/bin/env python3
"""Expands template.yaml with the SAM translator into plain CloudFormation.

cfn-lint validates a SAM template against SAM's own schemas without running
the transform, and skips some checks on it entirely (IAM action names, for
one). Expanding first and linting the result catches what only shows up in the
CloudFormation that AWS will actually receive: unknown event properties,
invalid IAM actions, broken references in generated resources.

Local CodeUri paths are replaced by placeholder S3 locations, as `sam package`
would do; nothing is uploaded and no AWS credentials are needed.

Usage: python3 infra/expand_template.py OUTPUT.json [--template T]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cfnlint.decode import decode

REPO = Path(__file__).resolve().parent.parent


class _NoManagedPolicies:
    """The translator only consults this for SAM `Policies` given by managed
    policy name; every function here has an explicit Role instead."""

    def load(self) -> dict:
        return {}

    def load_policies(self) -> dict:
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--template", type=Path, default=REPO / "template.yaml")
    args = parser.parse_args(argv)

    # The translator resolves AWS::Region through a boto3 session.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.public.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    template, matches = decode(str(args.template))
    if matches or template is None:
        print(f"expand_template: cannot parse {args.template}: {matches}", file=sys.stderr)
        return 2
    template = json.loads(json.dumps(template))
    for name, resource in (template.get("Resources") or {}).items():
        props = resource.get("Properties") or {}
        if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion"):
            for key in ("CodeUri", "ContentUri"):
                if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                    props[key] = f"s3://placeholder-bucket/{name}.zip"

    try:
        expanded = transform(template, {}, _NoManagedPolicies())
    except InvalidDocumentException as exc:
        print(f"expand_template: SAM transform of {args.template} failed:", file=sys.stderr)
        for cause in exc.causes:
            print(f"  - {cause.message}", file=sys.stderr)
        return 1
    args.output.write_text(json.dumps(expanded, indent=1, sort_keys=True) + "\n")
    print(
        f"expand_template: {args.template.name} -> {args.output} "
        f"({len(expanded.get('Resources', {}))} CloudFormation resources)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
