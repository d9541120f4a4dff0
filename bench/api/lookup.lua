-- wrk script: GET a random SIM (paths from $PATHS_FILE), API key from $KEY.
local paths = {}
for line in io.lines(os.getenv("PATHS_FILE")) do paths[#paths + 1] = line end
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
math.randomseed(os.time())
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
