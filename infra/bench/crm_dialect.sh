#!/usr/bin/env bash
# The seed 004 dialect and its /v1 operations under wrk, on the CRM bench data set
# (infra/bench/run.sh loads it) with a pipeline added per workspace: LEADS leads, each on its own
# company with a bench partner's domain (so each is linked to its own relationship). Endpoints:
# GET /api/crm/pipeline-stages, GET /api/crm/leads?page=1 (the door reads the whole list to page
# and count it), GET /v1/link-building/crm/opportunity (one Query), PATCH /api/crm/leads/{id}/stage
# (a linked move: LEAD_STAGE_CHANGED and STATUS_CHANGED in one transaction) and
# GET /api/crm/dashboard. Not part of CI.
#
#   BIN=/work/target-bench/release/linkcrm DATA=/work/target-bench/data-crm bash infra/bench/crm_dialect.sh
#
# DATA is changed (companies and leads are added once, `crm-leads.txt` lists them): point it at a
# copy of the bench data.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${BIN:?BIN is the linkcrm release binary}"
DATA="${DATA:?DATA is a copy of the bench data directory}"
PORT="${PORT:-3922}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-16}"
export BENCH_KEY="sk_live_agency_benchmark0000000000000000000000000"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
LINKCRM_RATE_LIMIT=0 "$BIN" --data-dir "$DATA" --bind "127.0.0.1:$PORT" 2> "$DATA/crm-server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 1000); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
if [ ! -s "$DATA/crm-leads.txt" ]; then
  python3 - "$DATA" "$PORT" <<'PY'
import json, os, sys, uuid, urllib.request
data, port = sys.argv[1], sys.argv[2]
key = os.environ["BENCH_KEY"]
leads = int(os.environ.get("LEADS", 200))
def call(method, path, body=None):
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read() or b"null")
def entity(ws):
    body = ws.split("_", 1)[1]
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    n = 0
    for c in body:
        n = n * 32 + alphabet.index(c)
    return str(uuid.UUID(int=n))
workspaces = sorted({line.split()[0] for line in open(f"{data}/bench-relationships.txt")})
out = []
for w, ws in enumerate(workspaces):
    e = entity(ws)
    stages = call("GET", f"/api/crm/pipeline-stages?entityId={e}")["stages"]
    for i in range(leads):
        # A company (and so a relationship) per lead: moves of different leads do not contend.
        co = call("POST", f"/api/crm/companies?entityId={e}", {"name": f"Bench partner {w}-{i}", "domain": f"crm-bench-{w}-{i}.example"})
        lead = call("POST", f"/api/crm/leads?entityId={e}", {"title": f"Deal {i}", "companyId": co["id"], "value": 100 + i})
        out.append(f"{e} {ws} {lead['id']} {stages[0]['id']} {stages[1]['id']}")
open(f"{data}/crm-leads.txt", "w").write("\n".join(out) + "\n")
print(f"added {len(out)} leads, each on its own partner's company")
PY
fi
export BENCH_LEADS="$DATA/crm-leads.txt"
for endpoint in stages leads_page v1_list move dashboard; do
  for c in $CONNECTIONS; do
    out=$(BENCH_ENDPOINT=$endpoint wrk -t2 -c"$c" -d"${DURATION}s" --timeout 10s --latency \
      -s "$ROOT/infra/bench/crm_dialect.lua" "http://127.0.0.1:$PORT" | grep -E '^RESULT')
    echo "$out c=$c"
  done
done
