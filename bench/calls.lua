-- Client cost of one DSM call: logs in, then calls image.get("nginx:latest")
-- COUNT times (default 1000) over the session's one connection, and prints
-- one line of JSON: {"calls": COUNT, "cpu_seconds": S}, where S is the
-- process CPU time (os.clock) spent in the calls. bench/curl_loop.c sends the
-- same requests with bare libcurl.
local syno = require "syno"

local count = math.tointeger(tonumber(arg[1] or "1000"))
local nas <close> = syno.connect {}
local get = nas.image.get

local start = os.clock()
for _ = 1, count do
  get("nginx:latest")
end
local elapsed = os.clock() - start
print(string.format('{"calls": %d, "cpu_seconds": %.6f}', count, elapsed))
