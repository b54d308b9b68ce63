-- wrk script for infra/bench/crm_dialect.sh: BENCH_ENDPOINT=stages (GET /api/crm/pipeline-stages),
-- leads_page (GET /api/crm/leads?page=1), v1_list (GET /v1/link-building/crm/opportunity),
-- move (PATCH /api/crm/leads/{id}/stage, between a workspace's first two stages) or dashboard
-- (GET /api/crm/dashboard), over the leads in BENCH_LEADS ("<entity> <ws id> <lead> <stage A>
-- <stage B>" lines), as the agency key naming the workspace with entityId (X-Workspace-Id in /v1).
local mode = os.getenv("BENCH_ENDPOINT") or "stages"
local auth = "Bearer " .. assert(os.getenv("BENCH_KEY"), "BENCH_KEY is not set")
local file = assert(os.getenv("BENCH_LEADS"), "BENCH_LEADS is not set")
local rows = {}
local threads = 0
local counter = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

function init(args)
  for line in io.lines(file) do
    local e, ws, lead, a, b = line:match("^(%S+) (%S+) (%S+) (%S+) (%S+)$")
    if e then
      rows[#rows + 1] = { e = e, ws = ws, lead = lead, a = a, b = b }
    end
  end
  math.randomseed(os.time() * 100 + (thread_no or 0))
end

function request()
  local r = rows[math.random(#rows)]
  local headers = { ["Authorization"] = auth }
  local q = "?entityId=" .. r.e
  if mode == "stages" then
    return wrk.format("GET", "/api/crm/pipeline-stages" .. q, headers)
  elseif mode == "leads_page" then
    return wrk.format("GET", "/api/crm/leads" .. q .. "&page=1&pageSize=50", headers)
  elseif mode == "v1_list" then
    headers["X-Workspace-Id"] = r.ws
    return wrk.format("GET", "/v1/link-building/crm/opportunity?limit=50", headers)
  elseif mode == "dashboard" then
    return wrk.format("GET", "/api/crm/dashboard" .. q, headers)
  elseif mode == "move" then
    counter = counter + 1
    headers["Content-Type"] = "application/json"
    local to = (counter % 2 == 0) and r.a or r.b
    return wrk.format("PATCH", "/api/crm/leads/" .. r.lead .. "/stage" .. q, headers,
      string.format('{"stageId": "%s"}', to))
  end
  error("unknown BENCH_ENDPOINT " .. mode)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %s %.1f %.3f %.3f %.3f %d %d %d\n", mode,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000,
    e.status, e.connect + e.read + e.write + e.timeout, summary.requests))
end
