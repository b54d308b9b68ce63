#!/usr/bin/env bash
# The fuzz step of the test command: starts the built binary on a fresh embedded store, prepares a
# funded workspace with a key holding every scope, and fuzzes the whole API from its own OpenAPI
# document twice (infra/fuzz.sh): with the workspace key, and with the agency key plus
# X-Workspace-Id of that workspace. Fails if either run reports anything.
#
#   infra/fuzz_ci.sh [path/to/linkcrm]      (default target/debug/linkcrm, built by cargo test)
#
# Longer locally: FUZZ_MAX_EXAMPLES=200 FUZZ_WALL_SECONDS=3600 infra/fuzz_ci.sh; another seed:
# FUZZ_SEED=7 (a failing run prints its seed and a curl line for each finding).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${1:-target/debug/linkcrm}"

work="$(mktemp -d "${TMPDIR:-/tmp}/linkcrm-fuzz-ci.XXXXXX")"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

agency_key="sk_live_agency_fuzz$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
# Port 0: the binary picks a free port and logs it. No rate limit (the fuzzer is one client
# sending thousands of requests); queued work is not run (no mail server or provider here).
LINKCRM_ADMIN_KEY="$agency_key" LINKCRM_RATE_LIMIT=0 LINKCRM_JOB_WORKER=off RUST_LOG=info \
  "$BIN" --data-dir "$work/data" --bind 127.0.0.1:0 2>"$work/server.log" &
server=$!
base=""
for _ in $(seq 1 100); do
  base="$(grep -o '"listening":"[^"]*"' "$work/server.log" | head -n 1 | cut -d'"' -f4 || true)"
  [ -n "$base" ] && break
  sleep 0.1
done
[ -n "$base" ] || { echo "fuzz: the server did not start"; cat "$work/server.log"; exit 1; }
base="http://$base"

call() { # method path key body → JSON on stdout
  curl -sS --fail-with-body -X "$1" "$base$2" -H "Authorization: Bearer $3" -d "$4"
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
ws="$(call POST /v1/workspaces "$agency_key" '{"name": "Fuzz"}' | field id)"
call POST "/v1/workspaces/$ws/credits" "$agency_key" '{"credits": 1000000}' >/dev/null
all='["crm:read","crm:write","campaigns:read","campaigns:write","webhooks:manage","workspaces:admin"]'
ws_key="$(call POST "/v1/workspaces/$ws/api-keys" "$agency_key" "{\"name\": \"fuzz\", \"scopes\": $all}" | field key)"

status=0
fuzz() { # name, then VAR=value ... for infra/fuzz.sh; the summary line, or the whole report on failure
  if env BASE_URL="$base" "${@:2}" bash infra/fuzz.sh >"$work/$1.log" 2>&1; then
    tail -n 1 "$work/$1.log"
  else
    cat "$work/$1.log"
    status=1
  fi
}
echo "== fuzz with a workspace key"
fuzz workspace KEY="$ws_key"
echo "== fuzz with the agency key and X-Workspace-Id"
fuzz agency KEY="$agency_key" WORKSPACE="$ws"
# A 5xx the server logged is a failure, except 503 provider_unavailable: no data provider
# (DataForSEO, Ahrefs, the LLM) is configured here, and the operations that need one say so by design.
unexpected="$(grep '"status":5[0-9][0-9]' "$work/server.log" \
  | grep -v -e '"code":"provider_unavailable"' -e '"path":"/v1/research/' -e '"path":"/v1/link-building/emails/' -e '"path":"/v1/link-building/serp-outreach"' -e '"path":"/v1/link-building/competitor-outreach"' || true)"
if [ -n "$unexpected" ]; then
  echo "fuzz: the server logged a 5xx"
  echo "$unexpected" | head -n 5
  status=1
fi
exit "$status"
