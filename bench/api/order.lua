-- wrk script: POST an eSIM order with a unique external_ref, API key from $KEY,
-- path from $ORDER_PATH (default /v1/esim-profiles).
local counter = 0
local tag = tostring(math.random(1, 1e9))
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
wrk.headers["Content-Type"] = "application/json"
local path = os.getenv("ORDER_PATH") or "/v1/esim-profiles"
request = function()
  counter = counter + 1
  return wrk.format("POST", path, nil,
    '{"external_ref":"bench-' .. tag .. '-' .. counter .. '"}')
end
