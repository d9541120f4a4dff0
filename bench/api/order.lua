-- wrk script: POST an eSIM order with a unique external_ref, API key from $KEY,
-- path from $ORDER_PATH (default /v1/esim-profiles); with $IDEMPOTENCY set, each request also
-- carries a unique Idempotency-Key (what a client following the docs sends).
local counter = 0
local tag = tostring(os.time())
-- Each wrk thread runs its own copy of this script (same random numbers): number them.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
wrk.headers["Content-Type"] = "application/json"
local path = os.getenv("ORDER_PATH") or "/v1/esim-profiles"
local idempotency = os.getenv("IDEMPOTENCY")
request = function()
  counter = counter + 1
  local n = tostring(tid) .. "-" .. counter
  local headers = nil
  if idempotency then  -- a table given to wrk.format replaces wrk.headers: copy them
    headers = {["Idempotency-Key"] = "bench-" .. tag .. "-" .. n}
    for name, value in pairs(wrk.headers) do headers[name] = value end
  end
  return wrk.format("POST", path, headers,
    '{"external_ref":"bench-' .. tag .. '-' .. n .. '"}')
end
