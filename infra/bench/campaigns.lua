-- wrk script for infra/bench/campaigns.sh: BENCH_ENDPOINT=list (a workspace's campaigns, 20 a
-- page) or metrics (one campaign's summary, timeline and byDomain), over the campaigns listed in
-- BENCH_CAMPAIGNS ("<workspace> <campaign>" lines).
local mode = os.getenv("BENCH_ENDPOINT") or "list"
local auth = "Bearer " .. assert(os.getenv("BENCH_KEY"), "BENCH_KEY is not set")
local file = assert(os.getenv("BENCH_CAMPAIGNS"), "BENCH_CAMPAIGNS is not set")
local ws_of, ids = {}, {}
local threads = 0

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
  local headers = { ["Authorization"] = auth, ["X-Workspace-Id"] = ws_of[i] }
  if mode == "list" then
    return wrk.format("GET", "/v1/link-building/campaign?limit=20", headers)
  elseif mode == "metrics" then
    return wrk.format("GET", "/v1/link-building/campaign/" .. ids[i] .. "/metrics", headers)
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
