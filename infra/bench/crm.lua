-- wrk script for the CRM benchmark (infra/bench/run.sh). One script, four endpoints, chosen by
-- BENCH_ENDPOINT: list | get | patch | event. Ids come from the files `linkcrm-bench load` wrote,
-- so every request names a real relationship in its own workspace.
--
--   BENCH_ENDPOINT=get BENCH_KEY=... BENCH_RELS=DIR/bench-relationships.txt \
--   BENCH_WORKSPACES=DIR/bench-workspaces.txt wrk -t2 -c16 -d20s --latency -s crm.lua URL

local mode = os.getenv("BENCH_ENDPOINT") or "get"
local auth = "Bearer " .. assert(os.getenv("BENCH_KEY"), "BENCH_KEY is not set")
local rels_file = assert(os.getenv("BENCH_RELS"), "BENCH_RELS is not set")
local ws_file = assert(os.getenv("BENCH_WORKSPACES"), "BENCH_WORKSPACES is not set")

local rel_ws, rel_ids, workspaces = {}, {}, {}
local priorities = { "LOW", "MEDIUM", "HIGH" }
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

function init(args)
  for line in io.lines(rels_file) do
    local ws, id = line:match("^(%S+) (%S+)$")
    if ws then
      rel_ws[#rel_ws + 1] = ws
      rel_ids[#rel_ids + 1] = id
    end
  end
  for line in io.lines(ws_file) do
    if #line > 0 then workspaces[#workspaces + 1] = line end
  end
  math.randomseed(os.time() * 100 + (thread_no or 0))
end

local base = "/v1/link-building/crm/"

function request()
  if mode == "list" then
    local ws = workspaces[math.random(#workspaces)]
    return wrk.format("GET", base .. "relationship?limit=50", { ["Authorization"] = auth, ["X-Workspace-Id"] = ws })
  end
  local i = math.random(#rel_ids)
  local headers = { ["Authorization"] = auth, ["X-Workspace-Id"] = rel_ws[i] }
  if mode == "get" then
    return wrk.format("GET", base .. "relationship/" .. rel_ids[i], headers)
  elseif mode == "patch" then
    headers["Content-Type"] = "application/json"
    local body = '{"priority":"' .. priorities[math.random(3)] .. '"}'
    return wrk.format("PATCH", base .. "relationship/" .. rel_ids[i], headers, body)
  elseif mode == "event" then
    headers["Content-Type"] = "application/json"
    local body = '{"relationshipId":"' .. rel_ids[i] .. '","type":"NOTE_ADDED","content":"Benchmark note '
      .. math.random(1000000) .. ': editor asked for two topic ideas."}'
    return wrk.format("POST", base .. "event", headers, body)
  end
  error("unknown BENCH_ENDPOINT " .. mode)
end

-- One machine-readable line for run.sh: endpoint, requests/s, p50, p99 and mean (ms), responses
-- that were not 2xx/3xx, and socket errors (connect, read, write, timeout).
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %s %.1f %.3f %.3f %.3f %d %d %d\n", mode,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000,
    e.status, e.connect + e.read + e.write + e.timeout, summary.requests))
end
