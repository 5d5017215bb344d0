--- size_report: which repositories take the most space on the NAS.
--
--   local size_report = require "size_report"
--   local image = require "syno.image"
--   for _, row in ipairs(size_report.by_repository(image.list())) do
--     print(row.repository, row.tags, row.bytes)
--   end
--   size_report.print(image.list(), {top = 5})
--
-- An image that several tags share counts once per repository, as the disk
-- holds it once. Dangling images are grouped as "<none>".

local format = require "syno.format"
local policy = require "syno.policy"

local M = {}

--- Returns {repository =, tags =, bytes =} per repository, largest first.
function M.by_repository(images)
  local rows, by_name = {}, {}
  for _, item in ipairs(images) do
    local name = policy.is_dangling(item) and "<none>" or item.repository
    local row = by_name[name]
    if not row then
      row = { repository = name, tags = 0, bytes = 0, seen = {} }
      by_name[name] = row
      rows[#rows + 1] = row
    end
    row.tags = row.tags + 1
    local id = policy.normal_id(item.id) or tostring(row.tags)
    if not row.seen[id] then
      row.seen[id] = true
      row.bytes = row.bytes + (tonumber(item.size) or 0)
    end
  end
  for _, row in ipairs(rows) do
    row.seen = nil
  end
  table.sort(rows, function(a, b)
    if a.bytes ~= b.bytes then
      return a.bytes > b.bytes
    end
    return a.repository < b.repository
  end)
  return rows
end

--- Prints the largest repositories; options.top limits the rows (default 10).
function M.print(images, options)
  -- print(image.list()) passes list's second result, the total, as options.
  local top = type(options) == "table" and options.top or 10
  for index, row in ipairs(M.by_repository(images)) do
    if index > top then
      break
    end
    print(string.format("%10s  %3d tag%s  %s", format.size(row.bytes), row.tags,
      row.tags == 1 and " " or "s", row.repository))
  end
end

return M
