#!/usr/bin/env bash
# Cold start (Lambda init) of every function binary beside a hello-world lambda_runtime function:
# process start → first GET /runtime/invocation/next, median and p90 of RUNS starts each, the API
# functions on moto. In AWS no AWS_ENDPOINT_URL is set, so the SDK trusts the Amazon roots only
# (linkcrm_storage::aws); the bench points at moto and says so with LINKCRM_AWS_TLS_ROOTS=amazon.
# Not part of CI.
#
#   CARGO_TARGET_DIR=/work/target-bench bash infra/bench/coldstart.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
RUNS="${RUNS:-20}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
FUNCTIONS=(crm outreach agent workspaces relay send-worker discover-worker)

pkgs=()
for f in "${FUNCTIONS[@]}"; do pkgs+=(-p "$f"); done
cargo build --release --locked "${pkgs[@]}" -p linkcrm-bench

PY="${LINKCRM_PYTHON:-$ROOT/.venv/bin/python}"
coproc MOTO { exec "$PY" infra/moto_server.py --port 0 --exit-on-stdin-eof; }
read -r ready port <&"${MOTO[0]}"
[ "$ready" = READY ] || { echo "moto did not start" >&2; exit 1; }
endpoint="http://127.0.0.1:$port"
table="coldstart-$$"

bins=(--bin "$TARGET/release/hello-lambda")
for f in "${FUNCTIONS[@]}"; do bins+=(--bin "$TARGET/release/$f"); done
AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
"$TARGET/release/linkcrm-bench" coldstart --runs "$RUNS" --create-table "$table" "${bins[@]}" \
  --env "AWS_ENDPOINT_URL=$endpoint" --env AWS_ACCESS_KEY_ID=test --env AWS_SECRET_ACCESS_KEY=test \
  --env AWS_REGION=us-east-1 --env "LINKCRM_TABLE=$table" --env LINKCRM_EVENT_BUS=linkcrm-bench \
  --env "LINKCRM_QUEUE_URL=$endpoint/123456789012/coldstart" \
  --env "LINKCRM_DEAD_LETTER_QUEUE_ARN=arn:aws:sqs:us-east-1:123456789012:coldstart-dlq" \
  --env LINKCRM_AWS_TLS_ROOTS=amazon --env RUST_LOG=warn
