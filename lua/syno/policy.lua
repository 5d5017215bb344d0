--- Cleanup policy: computes a plan (each image with a decision and the rule
-- behind it), then carries it out or, under dry run, only reports it.
--
--   local policy = require "syno.policy"
--   local plan = policy.plan(images, {keep = 2, dangling = true})
--   local report = policy.execute(plan, image_module)
--
-- Safety rules: an image is deleted only when a rule selects it and no rule
-- keeps it. DSM images (is_ddsm) are never selected. An image without a usable
-- timestamp is kept by the keep rule, because its age is unknown.

local core = require "syno.core"
local format = require "syno.format"

local M = {}

local function is_dangling(image)
  local repository, tag = image.repository, image.tag
  return repository == nil or repository == "" or repository == "<none>"
      or tag == nil or tag == "" or tag == "<none>"
end
M.is_dangling = is_dangling

-- Sorts newest first. Images with an unknown age sort before all others, so the
-- keep rule keeps them, and ties are broken by tag so the plan is repeatable.
local function newer(a, b)
  local a_known, b_known = format.known_time(a.created), format.known_time(b.created)
  if a_known ~= b_known then
    return not a_known
  end
  if a_known and a.created ~= b.created then
    return a.created > b.created
  end
  return tostring(a.tag) < tostring(b.tag)
end

--- Returns the plan for images under rules: a list of entries
-- {image =, action = "delete" | "keep", reason =}, sorted by name.
-- rules.keep: the number of newest tags to keep per repository (nil: keep all);
-- rules.dangling: delete dangling images.
function M.plan(images, rules)
  assert(type(images) == "table", "images must be a list")
  rules = rules or {}
  local keep = rules.keep
  assert(keep == nil or (math.type(keep) == "integer" and keep >= 0), "keep must be an integer >= 0")

  local entries = {}
  local by_repository = {}
  for _, image in ipairs(images) do
    local entry = { image = image, name = format.image_name(image) }
    entries[#entries + 1] = entry
    if image.is_ddsm then
      entry.action, entry.reason = "keep", "DSM image (is_ddsm)"
    elseif is_dangling(image) then
      if rules.dangling then
        entry.action, entry.reason = "delete", "dangling (no repository or tag)"
      else
        entry.action, entry.reason = "keep", "dangling, but dangling images are kept"
      end
    else
      local group = by_repository[image.repository]
      if not group then
        group = {}
        by_repository[image.repository] = group
      end
      group[#group + 1] = entry
    end
  end

  for repository, group in pairs(by_repository) do
    table.sort(group, function(a, b)
      return newer(a.image, b.image)
    end)
    for rank, entry in ipairs(group) do
      if keep == nil then
        entry.action, entry.reason = "keep", "no keep rule given"
      elseif rank <= keep then
        if format.known_time(entry.image.created) then
          entry.action = "keep"
          entry.reason = string.format("one of the %d newest tags of %s", keep, repository)
        else
          entry.action = "keep"
          entry.reason = "unknown age (no creation time)"
        end
      else
        entry.action = "delete"
        entry.reason = string.format("older than the %d newest tags of %s", keep, repository)
      end
    end
  end

  table.sort(entries, function(a, b)
    if a.name ~= b.name then
      return a.name < b.name
    end
    return tostring(a.image.id) < tostring(b.image.id)
  end)
  return entries
end

--- Returns the bytes that deleting the selected entries frees: an image's size
-- counts once, and only when every tag of that image id is selected, because
-- docker only untags an image that another tag still names.
function M.bytes_freed(plan, selected)
  local remaining = {}
  for _, entry in ipairs(plan) do
    local id = entry.image.id
    if id ~= nil and not selected[entry] then
      remaining[id] = true
    end
  end
  local counted, total = {}, 0
  for _, entry in ipairs(plan) do
    local id = entry.image.id
    if selected[entry] and not remaining[id] and not counted[id] then
      counted[id or entry] = true
      total = total + (tonumber(entry.image.size) or 0)
    end
  end
  return total
end

--- Returns the entries of plan whose action is "delete", as a set.
function M.deletions(plan)
  local set = {}
  for _, entry in ipairs(plan) do
    if entry.action == "delete" then
      set[entry] = true
    end
  end
  return set
end

--- Deletes the images the plan selects, one by one; a failure does not stop
-- the others. Returns {deleted =, kept =, failed =, bytes_freed =}, where
-- failed entries carry the error. Under dry run, image.delete sends nothing.
function M.execute(plan, image, options)
  options = options or {}
  local report = { deleted = {}, kept = {}, failed = {}, bytes_freed = 0 }
  for _, entry in ipairs(plan) do
    if entry.action == "delete" then
      local ok, err = pcall(image.delete, entry.image)
      if ok then
        report.deleted[#report.deleted + 1] = entry
        if options.on_deleted then
          options.on_deleted(entry)
        end
      else
        entry.error = err
        report.failed[#report.failed + 1] = entry
        if options.on_failed then
          options.on_failed(entry, err)
        end
        -- An interrupt stops the run after the current call.
        if (type(err) == "table" and err.kind == "interrupted") or core.interrupted() then
          break
        end
      end
    else
      report.kept[#report.kept + 1] = entry
    end
  end
  local deleted = {}
  for _, entry in ipairs(report.deleted) do
    deleted[entry] = true
  end
  report.bytes_freed = M.bytes_freed(plan, deleted)
  return report
end

return M
