#!/usr/bin/env bash
# Campaign reads under wrk: GET /v1/link-building/campaign (a workspace's list) and
# GET /v1/link-building/campaign/{id}/metrics, on the CRM bench data set (infra/bench/run.sh)
# with campaigns added: CAMPAIGNS per workspace, PARTNERS relationships each, SENDS EMAIL_SENT
# events per campaign (so the counters and attribution are live). Not part of CI.
#
#   BIN=/work/target-bench/release/linkcrm DATA=/work/target-bench/data-cmp bash infra/bench/campaigns.sh
#
# DATA is changed (campaigns are added once; `campaigns.txt` there lists them): point it at a copy.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${BIN:?BIN is the linkcrm release binary}"
DATA="${DATA:?DATA is a copy of the bench data directory}"
PORT="${PORT:-3919}"
DURATION="${DURATION:-10}"
export BENCH_KEY="sk_live_agency_benchmark0000000000000000000000000"
LINKCRM_RATE_LIMIT=0 "$BIN" --data-dir "$DATA" --bind "127.0.0.1:$PORT" 2> "$DATA/campaigns-server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 1000); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
if [ ! -s "$DATA/campaigns.txt" ]; then
  python3 - "$DATA" "$PORT" <<'PY'
import json, os, sys, urllib.request
data, port = sys.argv[1], sys.argv[2]
key = os.environ["BENCH_KEY"]
campaigns, partners, sends = int(os.environ.get("CAMPAIGNS", 5)), int(os.environ.get("PARTNERS", 100)), int(os.environ.get("SENDS", 30))
def call(method, path, ws, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "X-Workspace-Id": ws, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"null")
by_ws = {}
for line in open(f"{data}/bench-relationships.txt"):
    ws, rel = line.split()
    by_ws.setdefault(ws, []).append(rel)
out = []
for ws, rels in by_ws.items():
    for c in range(campaigns):
        members = rels[c * partners:(c + 1) * partners]
        cmp_id = call("POST", "/v1/link-building/campaign", ws, {"type": "custom", "name": f"Bench {c}", "relationshipIds": members})["id"]
        for rel in members[:sends]:
            call("POST", "/v1/link-building/crm/event", ws, {"relationshipId": rel, "type": "EMAIL_SENT",
                 "metadata": {"campaignId": cmp_id}})
        out.append(f"{ws} {cmp_id}")
open(f"{data}/campaigns.txt", "w").write("\n".join(out) + "\n")
print(f"added {len(out)} campaigns")
PY
fi
export BENCH_CAMPAIGNS="$DATA/campaigns.txt"
for endpoint in list metrics; do
  out=$(BENCH_ENDPOINT=$endpoint wrk -t2 -c16 -d"${DURATION}s" --timeout 10s --latency \
    -s "$ROOT/infra/bench/campaigns.lua" "http://127.0.0.1:$PORT" | grep -E '^RESULT')
  echo "$out"
done
