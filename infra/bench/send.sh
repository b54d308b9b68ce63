#!/usr/bin/env bash
# Outreach sends through the job queue on the embedded store (not part of CI; figures in
# BENCHMARKS.md):
#   1. builds linkcrm and linkcrm-bench in release mode;
#   2. per mailbox count in MAILBOXES and concurrency in CONCURRENCY: starts linkcrm on a fresh
#      data directory (agency key from LINKCRM_ADMIN_KEY, LINKCRM_RATE_LIMIT=0, in-process job
#      worker on) and runs `linkcrm-bench send`, which starts its own SMTP sink, sets up a
#      workspace with that many mailboxes and MESSAGES relationships on distinct domains, POSTs
#      MESSAGES send-emails at that concurrency (spread over the mailboxes in turn) and waits until
#      the sink has them all (or nothing arrived for 20 s); then stops the server;
#   3. with DRAIN=1 (the default), once more at the last mailbox count and concurrency with the
#      worker off while enqueueing, then restarts the server with its worker on the same data: the
#      queue's drain rate with no HTTP load beside it;
#   4. prints a Markdown table, the jobs the worker gave up, and the load average before and after.
#
# Knobs (environment): MESSAGES (2000), CONCURRENCY ("16 64"), MAILBOXES ("1 10"), DRAIN (1),
# SMTP_DELAY_MS (0; the sink's pause before its greeting, standing in for a distant mail server),
# PORT (3918), SINK_PORT (2526, drain run only), BENCH_DATA_DIR (default
# $CARGO_TARGET_DIR/send-bench-data). The server inherits the environment, so LINKCRM_MAX_RECEIVES
# (deliveries before the worker gives a job up, default 5) can be varied too.
# A run whose verification fails (not every invocation SUCCEEDED, not exactly N messages) still
# prints its row; the script goes on and exits 1 at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
DATA="${BENCH_DATA_DIR:-$TARGET/send-bench-data}"
MESSAGES="${MESSAGES:-2000}"
CONCURRENCY="${CONCURRENCY:-16 64}"
MAILBOXES="${MAILBOXES:-1 10}"
DRAIN="${DRAIN:-1}"
PORT="${PORT:-3918}"
SINK_PORT="${SINK_PORT:-2526}"
SMTP_DELAY_MS="${SMTP_DELAY_MS:-0}"
KEY="sk_live_agency_benchmark0000000000000000000000000"

echo "== build (release)"
cargo build --release --locked -p linkcrm -p linkcrm-bench
BIN="$TARGET/release"
mkdir -p "$DATA"
RESULTS="$DATA/results.md"
: > "$RESULTS"

SERVER=""
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true' EXIT

# start_server DIR [ENV=VALUE...]: a server on DIR, ready when this returns.
start_server() {
  local dir="$1"; shift
  env LINKCRM_RATE_LIMIT=0 LINKCRM_ADMIN_KEY="$KEY" "$@" \
    "$BIN/linkcrm" --data-dir "$dir" --bind "127.0.0.1:$PORT" 2>> "$dir/server.log" &
  SERVER=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null
}
stop_server() {
  kill "$SERVER"
  wait "$SERVER" || true
  SERVER=""
}

FAILED=0
# run_bench DIR ARGS...: the send benchmark; its row (and the give-ups in the server log) collected.
collect() {
  local dir="$1" rc="$2"
  grep -E '^\| (live|drain) ' "$dir/send.out" >> "$RESULTS" || echo "| (no row: $dir) |" >> "$RESULTS"
  [ -f "$DATA/header.md" ] || grep -E '^\| Mode |^\|---' "$dir/send.out" > "$DATA/header.md" || true
  echo "$(basename "$dir"): exit $rc, jobs given up: $(grep -c '"giving the job up"' "$dir/server.log" || true)," \
    "dead-lettered: $(grep -c '"job dead-lettered"' "$dir/server.log" || true)" >> "$DATA/notes.txt"
  [ "$rc" = 0 ] || FAILED=1
}
rm -f "$DATA/header.md" "$DATA/notes.txt"

echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for m in $MAILBOXES; do
  for c in $CONCURRENCY; do
    dir="$DATA/live-m$m-c$c"
    rm -rf "$dir" && mkdir -p "$dir"
    echo "== live: $MESSAGES messages, $m mailbox(es), concurrency $c"
    start_server "$dir"
    rc=0
    "$BIN/linkcrm-bench" send --base "http://127.0.0.1:$PORT" --key "$KEY" --messages "$MESSAGES" \
      --concurrency "$c" --mailboxes "$m" --smtp-delay-ms "$SMTP_DELAY_MS" --server-pid "$SERVER" > "$dir/send.out" || rc=$?
    cat "$dir/send.out"
    stop_server
    collect "$dir" "$rc"
  done
done

if [ "$DRAIN" = 1 ]; then
  c="${CONCURRENCY##* }"
  m="${MAILBOXES##* }"
  dir="$DATA/drain-m$m-c$c"
  rm -rf "$dir" && mkdir -p "$dir"
  echo "== drain: $MESSAGES messages, $m mailbox(es), enqueued at concurrency $c with the worker off, then drained"
  start_server "$dir" LINKCRM_JOB_WORKER=off
  "$BIN/linkcrm-bench" send --base "http://127.0.0.1:$PORT" --key "$KEY" --messages "$MESSAGES" \
    --concurrency "$c" --mailboxes "$m" --smtp-delay-ms "$SMTP_DELAY_MS" --sink-port "$SINK_PORT" --drain-marker "$dir/enqueued" > "$dir/send.out" &
  BENCH=$!
  while [ ! -f "$dir/enqueued" ]; do
    kill -0 "$BENCH" 2>/dev/null || break
    sleep 0.2
  done
  if [ -f "$dir/enqueued" ]; then
    stop_server
    start_server "$dir"
  fi
  rc=0
  wait "$BENCH" || rc=$?
  cat "$dir/send.out"
  stop_server
  collect "$dir" "$rc"
fi
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
cat "$DATA/header.md" "$RESULTS"
echo
cat "$DATA/notes.txt"
exit "$FAILED"
