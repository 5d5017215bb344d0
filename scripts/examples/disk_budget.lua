--- disk_budget: a cleanup that deletes the oldest images until the images
-- fit in a budget, on top of the usual safety rules.
--
--   local budget = require "disk_budget"
--   local report = budget.cleanup{max_bytes = 20e9, keep = 1, exclude = {"lscr.io/*"}}
--   print(require("syno.policy").report(report))
--
-- It first computes the plan of syno.policy with keep = N: the N newest images
-- of each repository, DSM images, excluded images and images in use stay. Of the
-- images that plan would delete, it deletes the oldest ones only until the
-- total fits under max_bytes; the rest it keeps with the reason "within the
-- disk budget". Under --dry-run nothing is deleted.

local policy = require "syno.policy"
local format = require "syno.format"

local M = {}

--- Runs the budget cleanup; options are the rules of policy.cleanup plus
-- max_bytes (required) and image (a connection's image module). Returns the
-- cleanup report.
function M.cleanup(options)
  local max_bytes = options.max_bytes
  assert(type(max_bytes) == "number" and max_bytes >= 0, "disk_budget: max_bytes must be a number of bytes")
  local rules = {}
  for key, value in pairs(options) do
    if key ~= "max_bytes" then
      rules[key] = value
    end
  end
  local user_on_plan = rules.on_plan
  rules.on_plan = function(plan)
    -- Total size on disk, each image id once.
    local total, counted = 0, {}
    for _, entry in ipairs(plan) do
      local id = policy.normal_id(entry.image.id) or entry
      if not counted[id] then
        counted[id] = true
        total = total + (tonumber(entry.image.size) or 0)
      end
    end
    -- Candidates, oldest first.
    local candidates = {}
    for _, entry in ipairs(plan) do
      if entry.action == "delete" then
        candidates[#candidates + 1] = entry
      end
    end
    table.sort(candidates, function(a, b)
      return (tonumber(a.image.created) or 0) < (tonumber(b.image.created) or 0)
    end)
    local selected = {}
    local remaining = total
    for _, entry in ipairs(candidates) do
      if remaining <= max_bytes then
        entry.action, entry.rule = "keep", "budget"
        entry.reason = string.format("within the disk budget of %s", format.size(max_bytes))
      else
        selected[entry] = true
        remaining = total - policy.bytes_freed(plan, selected)
        entry.reason = entry.reason .. string.format("; over the disk budget of %s", format.size(max_bytes))
      end
    end
    if user_on_plan then
      user_on_plan(plan)
    end
  end
  return policy.cleanup(rules)
end

return M
