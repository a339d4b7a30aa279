-- wrk script: policy_check over MCP streamable HTTP, a second opinion next to
-- benches/policy_throughput.rs. Driven by benches/wrk_policy_check.sh, which starts the server,
-- opens one MCP session per wrk thread and passes them in the environment:
--   MESHOS_TOKEN     bearer token
--   MESHOS_SESSIONS  space-separated Mcp-Session-Id values, one per wrk thread
--   MESHOS_SCENARIO  plain (default) or pii
-- JSON-RPC ids must be unique among a session's requests in flight, so each thread numbers its
-- own and threads never share a session.

local threads = {}
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_no", next_thread)
  table.insert(threads, thread)
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

function init(args)
  local sessions = {}
  for s in (os.getenv("MESHOS_SESSIONS") or ""):gmatch("%S+") do
    table.insert(sessions, s)
  end
  session = sessions[thread_no]
  if session == nil then
    error("no MCP session for wrk thread " .. thread_no .. "; pass one per thread in MESHOS_SESSIONS")
  end
  local args_json
  if (os.getenv("MESHOS_SCENARIO") or "plain") == "pii" then
    local prompt = "Customer jane.doe@example.com (card 4111 1111 1111 1111) writes: "
    while #prompt < 2048 do
      prompt = prompt .. "please summarise my last three orders and the delivery status. "
    end
    prompt = prompt:sub(1, 2048)
    args_json = '{"agent_id":"bench-agent","action":"llm.complete","model":"gpt-4o-mini",'
      .. '"region":"aws:eu-west-1","content":' .. json_string(prompt) .. '}'
  else
    args_json = '{"agent_id":"bench-agent","action":"email.send","model":"gpt-4o-mini"}'
  end
  params = '"params":{"name":"policy_check","arguments":' .. args_json .. '}}'
  headers = {
    ["Authorization"] = "Bearer " .. (os.getenv("MESHOS_TOKEN") or ""),
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["Mcp-Session-Id"] = session,
    ["Mcp-Protocol-Version"] = "2025-06-18",
  }
  counter = 0
  failures = 0
end

function request()
  counter = counter + 1
  local body = '{"jsonrpc":"2.0","id":' .. counter .. ',"method":"tools/call",' .. params
  return wrk.format("POST", "/mcp", headers, body)
end

function response(status, headers, body)
  if status ~= 200 or not body:find('"structuredContent"', 1, true) then
    failures = failures + 1
    if failures == 1 then
      io.stderr:write("unexpected response (HTTP " .. status .. "): " .. body:sub(1, 300) .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, t in ipairs(threads) do
    failed = failed + (t:get("failures") or 0)
  end
  io.write(string.format(
    "policy_check via wrk: %.0f checks/s  p50 %.2f ms  p99 %.2f ms  max %.2f ms  (%d responses not a decision)\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000, failed))
end
