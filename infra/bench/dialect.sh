#!/usr/bin/env bash
# The seed 003 dialect under wrk: GET /campaigns (a workspace's list), GET /campaigns/{id} (one
# campaign with its leads), POST /campaigns/{id}/leads (a new site each request) and
# GET /campaigns/{id}/analytics, on the CRM bench data set (infra/bench/run.sh loads it) with
# dialect campaigns added: CAMPAIGNS per workspace with LEADS leads each (through the dialect's
# bulk add, so each lead is a relationship, a contact and a membership), SENDS of them with an
# EMAIL_SENT in the campaign and REPLIES with a reply after it (so analytics has counters, replies
# and per-day volume to read). Not part of CI.
#
#   BIN=/work/target-bench/release/linkcrm DATA=/work/target-bench/data-dialect bash infra/bench/dialect.sh
#
# DATA is changed (campaigns and leads are added once, `dialect-campaigns.txt` lists them; lead
# adds under wrk add more): point it at a copy of the bench data.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${BIN:?BIN is the linkcrm release binary}"
DATA="${DATA:?DATA is a copy of the bench data directory}"
PORT="${PORT:-3921}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-16}"
export BENCH_KEY="sk_live_agency_benchmark0000000000000000000000000"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
LINKCRM_RATE_LIMIT=0 "$BIN" --data-dir "$DATA" --bind "127.0.0.1:$PORT" 2> "$DATA/dialect-server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 1000); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
if [ ! -s "$DATA/dialect-campaigns.txt" ]; then
  python3 - "$DATA" "$PORT" <<'PY'
import json, os, sys, urllib.request
data, port = sys.argv[1], sys.argv[2]
key = os.environ["BENCH_KEY"]
campaigns, leads = int(os.environ.get("CAMPAIGNS", 5)), int(os.environ.get("LEADS", 100))
sends, replies = int(os.environ.get("SENDS", 30)), int(os.environ.get("REPLIES", 10))
def call(method, path, body=None, ws=None):
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if ws:
        headers["X-Workspace-Id"] = ws
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read() or b"null")
workspaces = sorted({line.split()[0] for line in open(f"{data}/bench-relationships.txt")})
out = []
for w, ws in enumerate(workspaces):
    for c in range(campaigns):
        cmp_id = call("POST", "/api/v1/backlink-outreach/campaigns",
                      {"name": f"Dialect bench {c}", "keywords": ["bench"], "workspace_id": ws})["campaign_id"]
        batch = [{"website_url": f"https://lead-{w}-{c}-{i}.bench-sites.example/write-for-us",
                  "contact_email": f"editor{i}@lead-{w}-{c}-{i}.bench-sites.example",
                  "quality_score": 0.5, "source": "bench"} for i in range(leads)]
        r = call("POST", f"/api/v1/backlink-outreach/campaigns/{cmp_id}/leads/bulk?workspace_id={ws}", batch)
        assert r["added"] == leads, r
        got = call("GET", f"/api/v1/backlink-outreach/campaigns/{cmp_id}?workspace_id={ws}")
        for n, lead in enumerate(got["leads"][:sends]):
            call("POST", "/v1/link-building/crm/event", {"relationshipId": lead["lead_id"], "type": "EMAIL_SENT",
                 "metadata": {"campaignId": cmp_id}}, ws)
            if n < replies:
                call("POST", "/v1/link-building/crm/event", {"relationshipId": lead["lead_id"], "type": "EMAIL_RECEIVED",
                     "metadata": {"replyClass": "interested"}}, ws)
        out.append(f"{ws} {cmp_id}")
open(f"{data}/dialect-campaigns.txt", "w").write("\n".join(out) + "\n")
print(f"added {len(out)} campaigns with {leads} leads each")
PY
fi
export BENCH_CAMPAIGNS="$DATA/dialect-campaigns.txt"
for endpoint in list get lead_add analytics; do
  for c in $CONNECTIONS; do
    out=$(BENCH_ENDPOINT=$endpoint wrk -t2 -c"$c" -d"${DURATION}s" --timeout 10s --latency \
      -s "$ROOT/infra/bench/dialect.lua" "http://127.0.0.1:$PORT" | grep -E '^RESULT')
    echo "$out c=$c"
  done
done
