#!/usr/bin/env bash
# The CRM benchmark (not part of CI; figures in BENCHMARKS.md):
#   1. builds linkcrm and linkcrm-bench in release mode;
#   2. loads a fresh data directory straight into the embedded store (skipped when a marker says
#      the same parameters are already loaded);
#   3. measures the raw store's read rate on it;
#   4. starts the local binary on it and drives list, get, patch and event-create with wrk
#      (`apt-get install -y wrk`) at each connection count;
#   5. stops the server and prints a Markdown table.
#
# Knobs (environment): BENCH_DATA_DIR, ACCOUNTS, WORKSPACES, RELATIONSHIPS, EVENTS, SEED,
# DURATION (s per run), CONNECTIONS ("16 64"), THREADS (wrk threads), PORT, READ_SECONDS.
# Writes (patch, event) change the data; the load is not redone for that.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
DATA="${BENCH_DATA_DIR:-$TARGET/bench-data}"
ACCOUNTS="${ACCOUNTS:-100000}"
WORKSPACES="${WORKSPACES:-10}"
RELATIONSHIPS="${RELATIONSHIPS:-200000}"
EVENTS="${EVENTS:-1000000}"
SEED="${SEED:-42}"
DURATION="${DURATION:-20}"
CONNECTIONS="${CONNECTIONS:-16 64}"
THREADS="${THREADS:-2}"
PORT="${PORT:-3917}"
READ_SECONDS="${READ_SECONDS:-5}"
KEY="sk_live_agency_benchmark0000000000000000000000000"

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }

echo "== build (release)"
cargo build --release --locked -p linkcrm -p linkcrm-bench
BIN="$TARGET/release"

PARAMS="accounts=$ACCOUNTS workspaces=$WORKSPACES relationships=$RELATIONSHIPS events=$EVENTS seed=$SEED key=$KEY"
if [ -f "$DATA/bench-loaded" ] && [ "$(cat "$DATA/bench-loaded")" = "$PARAMS" ]; then
  echo "== load: already loaded ($PARAMS)"
else
  echo "== load ($PARAMS)"
  rm -rf "$DATA"
  "$BIN/linkcrm-bench" load --data-dir "$DATA" --accounts "$ACCOUNTS" --workspaces "$WORKSPACES" \
    --relationships "$RELATIONSHIPS" --events "$EVENTS" --seed "$SEED" --key "$KEY"
  echo "$PARAMS" > "$DATA/bench-loaded"
fi
du -sh "$DATA/linkcrm.redb"
# Write back the load's dirty pages now, so the kernel's writeback does not run under the figures.
sync

echo "== raw store read rate"
"$BIN/linkcrm-bench" read-rate --data-dir "$DATA" --seconds "$READ_SECONDS" | tee "$DATA/read-rate.md"

echo "== server"
LINKCRM_RATE_LIMIT=0 "$BIN/linkcrm" --data-dir "$DATA" --bind "127.0.0.1:$PORT" 2> "$DATA/server.log" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null

export BENCH_KEY="$KEY" BENCH_RELS="$DATA/bench-relationships.txt" BENCH_WORKSPACES="$DATA/bench-workspaces.txt"
RESULTS="$DATA/http-results.txt"
: > "$RESULTS"
# Where the CPU went during each run (the machine is shared): the server's, wrk's, and everything
# else's, in percent of one core. Jiffies from /proc, wrk's own time from bash's `time`.
HZ="$(getconf CLK_TCK)"
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
server_cpu() { awk '{print $14+$15}' "/proc/$SERVER/stat"; }
TIMEFORMAT='%U %S'
for endpoint in list get patch event; do
  for c in $CONNECTIONS; do
    echo "== wrk $endpoint, $c connections, ${DURATION}s"
    b0=$(busy); s0=$(server_cpu); t0=$(date +%s.%N)
    { time BENCH_ENDPOINT=$endpoint wrk -t"$THREADS" -c"$c" -d"${DURATION}s" --timeout 10s --latency \
      -s "$ROOT/infra/bench/crm.lua" "http://127.0.0.1:$PORT" > "$DATA/wrk.out"; } 2> "$DATA/wrk.time"
    b1=$(busy); s1=$(server_cpu); t1=$(date +%s.%N)
    read -r wu wsys < "$DATA/wrk.time"
    cpu="$(awk -v b="$((b1 - b0))" -v s="$((s1 - s0))" -v hz="$HZ" -v w="$wu + $wsys" -v secs="$t1 - $t0" \
      'BEGIN { split(w, a, " "); wt = a[1] + a[3]; split(secs, t, " "); d = t[1] - t[3];
               printf "%.0f %.0f", 100 * s / hz / d, 100 * wt / d;
               o = 100 * (b - s) / hz / d - 100 * wt / d; printf " %.0f", (o < 0 ? 0 : o) }')"
    grep -vE '^RESULT' "$DATA/wrk.out"
    echo "CPU (% of one core): server, wrk, other = $cpu"
    grep -E '^RESULT' "$DATA/wrk.out" | sed "s/^RESULT /RESULT $c /; s/\$/ $cpu/" >> "$RESULTS"
  done
done
rm -f "$DATA/wrk.out" "$DATA/wrk.time"

kill "$SERVER"
wait "$SERVER" || true
trap - EXIT

declare -A LABEL=(
  [list]='`GET /relationship?limit=50`'
  [get]='`GET /relationship/{id}`'
  [patch]='`PATCH /relationship/{id}` (priority)'
  [event]='`POST /event` (NOTE_ADDED)'
)
echo
echo "| Endpoint | Connections | Requests/s | p50 (ms) | p99 (ms) | Mean (ms) | Non-2xx | Socket errors | CPU server / wrk / other (% of a core) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
while read -r _ c endpoint rps p50 p99 mean status sock _total cs cw co; do
  echo "| ${LABEL[$endpoint]} | $c | $(printf '%.0f' "$rps") | $p50 | $p99 | $mean | $status | $sock | $cs / $cw / $co |"
done < "$RESULTS"
echo
echo "Non-2xx responses by status (server access log):"
grep -o '"status":[0-9]*' "$DATA/server.log" | sort | uniq -c | grep -v '"status":20' || echo "  none"
echo
echo "Raw store (no HTTP), from read-rate:"
cat "$DATA/read-rate.md"
