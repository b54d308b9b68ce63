#!/usr/bin/env bash
# Lints the SAM template and checks it against infra/table.json.
#
# Assumes the packages in infra/requirements-lint.txt are installed for
# ${PYTHON:-python3}, e.g.
#   python3 -m venv .venv && .venv/bin/pip install -r infra/requirements-lint.txt
#   PYTHON=.venv/bin/python infra/lint.sh
#
# Steps (all run; exits non-zero if any failed):
#   1. cfn-lint template.yaml                      SAM-level schema checks
#   2. SAM transform + cfn-lint on the result      what CloudFormation will get
#   3. python3 infra/check_template.py             table == table.json, IAM rules
#   4. unit tests of the checks (infra/test_*template.py)
set -uo pipefail

PYTHON="${PYTHON:-python3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2

# cfn-lint from the same interpreter the caller chose (its console script may
# not be on PATH when a venv is used without activating it).
cfn_lint() { "$PYTHON" -c 'import sys; from cfnlint.runner import main; sys.exit(main())' "$@"; }

failed=()
step() {
  local name="$1"; shift
  echo "== $name"
  if "$@"; then
    echo "   ok"
  else
    echo "   FAILED: $name" >&2
    failed+=("$name")
  fi
}

workdir="$(mktemp -d "${TMPDIR:-/tmp}/linkcrm-lint.XXXXXX")" || exit 2
trap 'rm -rf "$workdir"' EXIT
expanded="$workdir/expanded-template.json"

step "cfn-lint template.yaml" cfn_lint template.yaml
step "SAM transform" "$PYTHON" infra/expand_template.py "$expanded"
if [[ " ${failed[*]-} " != *" SAM transform "* ]]; then
  step "cfn-lint expanded template" cfn_lint "$expanded"
fi
step "check_template.py" "$PYTHON" infra/check_template.py
step "unit tests" "$PYTHON" -m unittest infra/test_check_template.py infra/test_prebuilt_template.py

if ((${#failed[@]})); then
  echo "lint: ${#failed[@]} step(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "lint: all steps passed"
