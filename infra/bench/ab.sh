#!/usr/bin/env bash
# A/B of two linkcrm release binaries on the data infra/bench/run.sh loaded: ROUNDS rounds, the two
# binaries alternating, wrk at 16 connections for DURATION s per endpoint (list, get, patch,
# event). Prints "<old|new> <round> <endpoint> <requests/s> <non-2xx>". Not part of CI.
#
#   OLD=/tmp/linkcrm-old NEW=target-bench/release/linkcrm bash infra/bench/ab.sh
#
# OLD_DATA / NEW_DATA give each binary its own copy of the data (default: both use DATA), for
# builds whose stored encodings differ (copy the loaded directory, then `linkcrm store compact`
# the new one).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA="${BENCH_DATA_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/bench-data}"
PORT="${PORT:-3917}"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
export BENCH_KEY="sk_live_agency_benchmark0000000000000000000000000"
OLD_DATA="${OLD_DATA:-$DATA}"
NEW_DATA="${NEW_DATA:-$DATA}"
export BENCH_RELS="$DATA/bench-relationships.txt" BENCH_WORKSPACES="$DATA/bench-workspaces.txt"
for round in $(seq 1 "$ROUNDS"); do
  for name in old new; do
    if [ "$name" = old ]; then bin="$OLD" dir="$OLD_DATA"; else bin="$NEW" dir="$NEW_DATA"; fi
    export BENCH_RELS="$dir/bench-relationships.txt" BENCH_WORKSPACES="$dir/bench-workspaces.txt"
    LINKCRM_RATE_LIMIT=0 "$bin" --data-dir "$dir" --bind "127.0.0.1:$PORT" 2> "$DATA/ab-server-$name.log" &
    server=$!
    for _ in $(seq 1 1000); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
    for endpoint in list get patch event; do
      out=$(BENCH_ENDPOINT=$endpoint wrk -t2 -c16 -d"${DURATION}s" --timeout 10s --latency \
        -s "$ROOT/infra/bench/crm.lua" "http://127.0.0.1:$PORT" | grep -E '^RESULT')
      echo "$name $round $endpoint $(echo "$out" | awk '{print $3, $7}')"
    done
    kill "$server"; wait "$server" 2>/dev/null
  done
done
