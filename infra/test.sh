#!/usr/bin/env bash
# Runs every test: template lint and checks, formatting, clippy, and the whole cargo test suite
# (conformance suites on the embedded store and on moto's DynamoDB/SQS/EventBridge server, and the
# black-box API tests on both backends), then the fuzz run of the API (infra/fuzz_ci.sh). Installs
# the pinned Python packages it needs into .venv (and schemathesis into .venv-fuzz).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -r infra/requirements-test.txt -r infra/requirements-lint.txt
export LINKCRM_PYTHON="$ROOT/.venv/bin/python"

# A fresh clone builds everything once: incremental state would only double the target directory
# (a full build of the workspace's tests is about 12 GB without it).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Dovecot (Debian's dovecot-imapd) is the real IMAP server the mailbox-polling tests read.
if [ ! -x /usr/sbin/dovecot ]; then
  echo "== installing dovecot-imapd"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q dovecot-imapd >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q dovecot-imapd >/dev/null; }
fi

echo "== template lint"
PYTHON=.venv/bin/python bash infra/lint.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked --no-fail-fast

echo "== fuzz (schemathesis against the binary, from its OpenAPI document)"
bash infra/fuzz_ci.sh target/debug/linkcrm
