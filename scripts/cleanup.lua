#!/usr/bin/env synosh
-- Removes dangling images and keeps the N newest tags of each repository.
-- Prints the plan (every image with its decision and the reason), then deletes
-- what the plan selects unless --dry-run is given.
--
-- Exit status: 0 when every planned delete succeeded, 1 when any failed,
-- 2 for a usage error.

local syno = require "syno"
local format = require "syno.format"
local policy = require "syno.policy"

local usage_text = [[
usage: synosh [connection options] scripts/cleanup.lua [options]

Options:
  --keep N        keep the N newest tags of each repository (default 3)
  --no-dangling   keep dangling images (by default they are deleted)
  --dry-run       print the plan and send no delete
  -h, --help      show this help

DSM's own images (is_ddsm) are never deleted. An image without a creation
time counts as newest, so the keep rule keeps it.]]

local function fail_usage(message)
  io.stderr:write("cleanup.lua: ", message, " (see --help)\n")
  os.exit(2)
end

local options = { keep = 3, dangling = true, dry_run = syno.dry_run }
local args = { ... }
local i = 1
while i <= #args do
  local option = args[i]
  if option == "--keep" or option:match("^%-%-keep=") then
    local value = option:match("^%-%-keep=(.*)$")
    if not value then
      i = i + 1
      value = args[i]
    end
    if value == nil then
      fail_usage("--keep needs a number, such as --keep 3")
    end
    if not value:match("^%d+$") then
      fail_usage(string.format("invalid --keep %q: give a whole number >= 0", value))
    end
    options.keep = math.tointeger(tonumber(value))
  elseif option == "--no-dangling" then
    options.dangling = false
  elseif option == "--dry-run" then
    options.dry_run = true
  elseif option == "-h" or option == "--help" then
    print(usage_text)
    os.exit(0)
  else
    fail_usage("unknown option " .. option)
  end
  i = i + 1
end

local nas = syno.connect { dry_run = options.dry_run }
local images = nas.image.list()
local plan = policy.plan(images, { keep = options.keep, dangling = options.dangling })
local now = os.time()

print(string.format("cleanup plan for %s: keep the newest %d tag%s per repository, %s%s",
  nas:info().url, options.keep, options.keep == 1 and "" or "s",
  options.dangling and "delete dangling images" or "keep dangling images",
  options.dry_run and " (dry run: nothing is deleted)" or ""))

local planned_count = 0
for _, entry in ipairs(plan) do
  if entry.action == "delete" then
    planned_count = planned_count + 1
  end
  print(string.format("  %-6s %-48s %10s  %-14s %s", entry.action, entry.name,
    format.size(entry.image.size), format.age(entry.image.created, now), entry.reason))
end
print(string.format("plan: delete %d of %d images, freeing %s", planned_count, #plan,
  format.size(policy.bytes_freed(plan, policy.deletions(plan)))))

local report = policy.execute(plan, nas.image, {
  on_failed = function(entry, err)
    syno.log.error(string.format("cannot delete %s: %s", entry.name, tostring(err)))
  end,
})

if options.dry_run then
  print(string.format("dry run: would delete %d images, keep %d", #report.deleted, #report.kept))
else
  print(string.format("deleted %d images (%s), kept %d, failed %d", #report.deleted,
    format.size(report.bytes_freed), #report.kept, #report.failed))
end
nas:close()
if #report.failed > 0 then
  os.exit(1)
end
