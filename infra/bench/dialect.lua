-- wrk script for infra/bench/dialect.sh: BENCH_ENDPOINT=list (GET /campaigns), get
-- (GET /campaigns/{id} with its leads), lead_add (POST /campaigns/{id}/leads, a new site each
-- request) or analytics (GET /campaigns/{id}/analytics), over the campaigns in BENCH_CAMPAIGNS
-- ("<workspace> <campaign>" lines), as the agency key naming the workspace with workspace_id.
local mode = os.getenv("BENCH_ENDPOINT") or "list"
local auth = "Bearer " .. assert(os.getenv("BENCH_KEY"), "BENCH_KEY is not set")
local file = assert(os.getenv("BENCH_CAMPAIGNS"), "BENCH_CAMPAIGNS is not set")
local prefix = "/api/v1/backlink-outreach"
local ws_of, ids = {}, {}
local threads = 0
local counter = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

function init(args)
  for line in io.lines(file) do
    local ws, id = line:match("^(%S+) (%S+)$")
    if ws then
      ws_of[#ws_of + 1] = ws
      ids[#ids + 1] = id
    end
  end
  math.randomseed(os.time() * 100 + (thread_no or 0))
end

function request()
  local i = math.random(#ids)
  local headers = { ["Authorization"] = auth }
  local q = "?workspace_id=" .. ws_of[i]
  if mode == "list" then
    return wrk.format("GET", prefix .. "/campaigns" .. q, headers)
  elseif mode == "get" then
    return wrk.format("GET", prefix .. "/campaigns/" .. ids[i] .. q, headers)
  elseif mode == "analytics" then
    return wrk.format("GET", prefix .. "/campaigns/" .. ids[i] .. "/analytics" .. q, headers)
  elseif mode == "lead_add" then
    counter = counter + 1
    headers["Content-Type"] = "application/json"
    local site = string.format("wrk-%d-%d-%d.bench-new.example", thread_no or 0, os.time(), counter)
    local body = string.format(
      '{"website_url": "https://%s/", "contact_email": "editor@%s", "quality_score": 0.4, "workspace_id": "%s"}',
      site, site, ws_of[i])
    return wrk.format("POST", prefix .. "/campaigns/" .. ids[i] .. "/leads", headers, body)
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
