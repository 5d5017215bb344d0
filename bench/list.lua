-- Peak memory of a listing: logs in, lists every image, logs out. The harness
-- reads the peak resident set size of this process. This script prints the
-- resident set size after the login, before the listing, in KiB.
local syno = require "syno"

-- Returns a field of /proc/self/status in KiB.
local function status_kib(field)
  local file = assert(io.open("/proc/self/status"))
  local text = file:read("a")
  file:close()
  return math.tointeger(tonumber(text:match(field .. ":%s*(%d+)")))
end

local nas <close> = syno.connect {}
local before = status_kib("VmRSS")
local images = nas.image.list()
print(string.format('{"images": %d, "rss_before_list_kib": %d}', #images, before))
