-- List and plan time: logs in, then lists every image and computes the
-- cleanup plan of scripts/cleanup.lua (keep 3 tags per repository, delete
-- dangling images). Prints one line of JSON with the process CPU time
-- (os.clock) of the list and the plan, excluding start-up and login.
local syno = require "syno"
local policy = require "syno.policy"

local nas <close> = syno.connect {}
local start = os.clock()
local images = nas.image.list()
local listed = os.clock()
local plan = policy.plan(images, { keep = 3, dangling = true })
local planned = os.clock()
print(string.format('{"images": %d, "entries": %d, "list_seconds": %.6f, "plan_seconds": %.6f}',
  #images, #plan, listed - start, planned - listed))
