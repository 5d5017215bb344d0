-- The whole job: log in, list every image, delete the COUNT oldest images
-- (default 500) that are neither dangling nor DSM images, log out.
-- bench/job.sh (curl + jq) and bench/job.py (requests) do the same job and
-- choose the same images: oldest created first, then by repository and tag.
local syno = require "syno"

local count = math.tointeger(tonumber(arg[1] or "500"))
local nas = syno.connect {}

local candidates = {}
for _, image in ipairs(nas.image.list()) do
  if image.repository ~= "<none>" and not image.is_ddsm then
    candidates[#candidates + 1] = image
  end
end
table.sort(candidates, function(a, b)
  if a.created ~= b.created then
    return a.created < b.created
  end
  if a.repository ~= b.repository then
    return a.repository < b.repository
  end
  return a.tag < b.tag
end)

for index = 1, math.min(count, #candidates) do
  nas.image.delete(candidates[index], { force = true })
end
nas:close()
