--- Cleanup and pull policies.
--
--   local policy = require "syno.policy"
--   local report = policy.cleanup{keep = 2, older_than = "30d", exclude = {"lscr.io/*"}}
--   print(policy.report(report))
--
-- A cleanup first computes a plan: every image with its decision and the rule
-- behind it. Then it deletes what the plan selects (under dry run it only
-- reports it) and returns a report. The safety rules:
--   * an image is deleted only when every rule given selects it and no rule
--     protects it;
--   * DSM's own images (is_ddsm) are protected unless show_dsm is set;
--   * images that containers use are protected whenever the container list
--     is known;
--   * an image without a usable creation time has an unknown age and is kept
--     unless unknown_age = "delete";
--   * an invalid rule or pattern stops the run before any delete;
--   * each image is deleted at most once, however often the NAS lists it.

local core = require "syno.core"
local errors = require "syno.errors"
local format = require "syno.format"
local pattern = require "syno.pattern"

local M = {}

local function usage(message)
  errors.raise { kind = "usage", message = message }
end

local function is_dangling(image)
  local repository, tag = image.repository, image.tag
  return repository == nil or repository == "" or repository == "<none>"
      or tag == nil or tag == "" or tag == "<none>"
end
M.is_dangling = is_dangling

--- Returns an image id without its "sha256:" prefix, so both spellings of one
-- id compare equal.
local function normal_id(id)
  if type(id) ~= "string" or id == "" then
    return nil
  end
  return (id:gsub("^sha256:", ""))
end
M.normal_id = normal_id

local duration_units = { s = 1, min = 60, h = 3600, d = 86400, w = 7 * 86400 }

--- Parses a duration such as "30d", "12h", "2w", "90min" or "1w3d" into
-- seconds. Returns nil and a message for anything else. "m" is rejected:
-- read as minutes where months were meant, it would select almost every image.
function M.parse_duration(text)
  if math.type(text) == "integer" and text >= 0 then
    return text
  end
  local function bad(extra)
    return nil, string.format("invalid duration %q: give a number and a unit (s, min, h, d or w), "
      .. "such as 30d, 12h or 2w%s", tostring(text), extra or "")
  end
  if type(text) ~= "string" or text == "" then
    return bad()
  end
  local total, rest = 0, text
  while rest ~= "" do
    local count, unit, tail = rest:match("^(%d+)(min)(.*)$")
    if not count then
      count, unit, tail = rest:match("^(%d+)([shdw])(.*)$")
    end
    if not count and rest:match("^%d+[mM]") then
      return bad("; \"m\" could mean minutes or months, so write 90min for minutes, or days "
        .. "(180d) or weeks (26w) for months")
    end
    if not count or #count > 9 then
      return bad()
    end
    total = total + tonumber(count) * duration_units[unit]
    rest = tail
  end
  return total
end

-- The rules policy.plan accepts, with a check for each.
local rule_checks = {
  keep = function(value)
    return math.type(value) == "integer" and value >= 0, "keep must be an integer >= 0"
  end,
  older_than = function(value)
    local seconds, message = M.parse_duration(value)
    return seconds ~= nil, "older_than: " .. tostring(message)
  end,
  unknown_age = function(value)
    return value == "keep" or value == "delete", "unknown_age must be \"keep\" or \"delete\""
  end,
  include = function()
    return true
  end,
  exclude = function()
    return true
  end,
  dangling = function(value)
    return type(value) == "boolean", "dangling must be true or false"
  end,
  show_dsm = function(value)
    return type(value) == "boolean", "show_dsm must be true or false"
  end,
  force = function(value)
    return type(value) == "boolean", "force must be true or false"
  end,
  containers = function(value)
    return type(value) == "table", "containers must be a list of {name =, image =} records"
  end,
  now = function(value)
    return math.type(value) == "integer", "now must be an integer unix time"
  end,
}

--- Checks rules and compiles their patterns. Raises a usage error, before
-- anything is deleted, for an unknown rule, a bad value or an invalid pattern.
function M.check_rules(rules)
  if rules ~= nil and type(rules) ~= "table" then
    usage("policy rules must be a table, got " .. type(rules))
  end
  rules = rules or {}
  for key, value in pairs(rules) do
    local check = rule_checks[key]
    if not check then
      local names = {}
      for name in pairs(rule_checks) do
        names[#names + 1] = name
      end
      table.sort(names)
      usage(string.format("unknown policy rule %q (rules: %s)", tostring(key), table.concat(names, ", ")))
    end
    local ok, message = check(value)
    if not ok then
      if key ~= "older_than" then
        message = string.format("%s, got %s", message, type(value) == "string"
          and string.format("%q", value) or tostring(value))
      end
      usage(message)
    end
  end
  local compiled = {}
  for key, value in pairs(rules) do
    compiled[key] = value
  end
  local message
  compiled.include_matchers, message = pattern.compile_all(rules.include, "include")
  if message then
    usage(message)
  end
  compiled.exclude_matchers, message = pattern.compile_all(rules.exclude, "exclude")
  if message then
    usage(message)
  end
  if rules.older_than ~= nil then
    compiled.older_than_seconds = M.parse_duration(rules.older_than)
  end
  compiled.unknown_age = rules.unknown_age or "keep"
  compiled.now = rules.now or os.time()
  return compiled
end

-- Returns the short form of a duration for reasons: 2592000 -> "30d".
local function duration_text(rules)
  if type(rules.older_than) == "string" then
    return rules.older_than
  end
  return string.format("%ds", rules.older_than_seconds)
end

-- Normalises a reference for comparing a container's image with an image
-- record: docker.io/library/nginx, library/nginx and nginx are one name, and
-- a reference without a tag means ":latest".
local function canonical_name(repository, tag)
  repository = repository:gsub("^docker%.io/", ""):gsub("^index%.docker%.io/", ""):gsub("^library/", "")
  return repository .. ":" .. (tag or "latest")
end

-- Splits a container's image reference into repository and tag (nil when
-- it has none), ignoring a digest.
local function split_reference(text)
  return pattern.split((text:gsub("@.*$", "")))
end

-- Builds the lookup of images in use: canonical name or id -> container names.
local function in_use_index(containers)
  local index = {}
  for _, container in ipairs(containers or {}) do
    local used = container.image
    if type(used) == "string" and used ~= "" then
      local key
      local id = used:match("^sha256:(%x+)$") or (used:match("^%x+$") and #used >= 12 and used)
      if id then
        key = "id:" .. id
      else
        key = canonical_name(split_reference(used))
      end
      index[key] = index[key] or {}
      table.insert(index[key], tostring(container.name or "?") .. (container.status and
        string.format(" (%s)", container.status) or ""))
    end
  end
  return index
end

local function containers_using(index, image)
  if not is_dangling(image) then
    local names = index[canonical_name(image.repository, image.tag)]
    if names then
      return names
    end
  end
  local id = normal_id(image.id)
  if id then
    for key, names in pairs(index) do
      local used = key:match("^id:(%x+)$")
      if used and id:sub(1, #used) == used then
        return names
      end
    end
  end
  return nil
end

-- Splits a tag into runs of digits and of other characters.
local function tag_parts(tag)
  local parts = {}
  for digits, other in tag:gmatch("(%d*)(%D*)") do
    if digits ~= "" then
      parts[#parts + 1] = digits
    end
    if other ~= "" then
      parts[#parts + 1] = other
    end
  end
  return parts
end

-- Compares two runs of tag_parts: returns true when a ranks before b. Digit
-- runs compare as numbers, higher first; other runs as text, in reverse, so
-- that "1.27.3" (".") comes before "1.27-alpine" ("-").
local function part_before(a, b)
  local a_number, b_number = a:match("^0*(%d+)$"), b:match("^0*(%d+)$")
  if a_number and b_number then
    if #a_number ~= #b_number then
      return #a_number > #b_number
    end
    return a_number > b_number
  end
  return a > b
end

--- Returns true when tag a ranks before tag b among images created at the
-- same time: "latest" first, then the higher version ("1.27.3" before
-- "1.27.2", "10" before "9"), then the plain tag before its variants ("7.4"
-- before "7.4-alpine"). Builds made by one pipeline often share a creation
-- time, and a keep rule should then keep the tag people pull by.
function M.tag_before(a, b)
  if a == b then
    return false
  end
  if a == "latest" or b == "latest" then
    return a == "latest"
  end
  local a_parts, b_parts = tag_parts(a), tag_parts(b)
  for index = 1, math.min(#a_parts, #b_parts) do
    local a_part, b_part = a_parts[index], b_parts[index]
    if a_part ~= b_part then
      return part_before(a_part, b_part)
    end
  end
  if #a_parts ~= #b_parts then
    return #a_parts < #b_parts
  end
  return a < b
end

--- Returns true when image a ranks before image b: newer first, ties by
-- tag as M.tag_before orders them, so the plan is repeatable.
function M.newer(a, b)
  if a.created ~= b.created then
    return a.created > b.created
  end
  return M.tag_before(tostring(a.tag), tostring(b.tag))
end
local newer = M.newer

local function set(entry, action, rule, reason)
  entry.action, entry.rule, entry.reason = action, rule, reason
end

-- Applies the age rule to an entry the other rules select; returns true when
-- the image is old enough (or no age rule is given).
local function age_selects(entry, rules, what)
  if not rules.older_than_seconds then
    return true, nil
  end
  local created = entry.image.created
  if not format.known_time(created) then
    if rules.unknown_age == "delete" then
      return true, "unknown age (unknown_age = delete)"
    end
    set(entry, "keep", "unknown_age", what .. "unknown age (no creation time), kept unless unknown_age = delete (--unknown-age delete)")
    return false
  end
  local age = format.age(created, rules.now)
  if created > rules.now - rules.older_than_seconds then
    set(entry, "keep", "older_than", string.format("%screated %s, newer than %s", what, age, duration_text(rules)))
    return false
  end
  return true, string.format("created %s, older than %s", age, duration_text(rules))
end

-- Returns the reasons for an image within and beyond the keep rule.
local function keep_reasons(keep, repository, included_only)
  if keep == nil then
    return nil, nil
  end
  local images = included_only and "included images" or "images"
  if keep == 1 then
    local image = included_only and "included image" or "image"
    return string.format("the newest %s of %s", image, repository),
      string.format("not the newest %s of %s", image, repository)
  end
  return string.format("one of the %d newest %s of %s", keep, images, repository),
    string.format("not among the %d newest %s of %s", keep, images, repository)
end

--- Returns the plan for images under rules: a list of entries
--   {image =, name =, action = "delete" | "keep", rule =, reason =}
-- sorted by repository, then name (dangling images first), with plan.warnings (a list of lines) and plan.rules.
-- Rules: keep, older_than, unknown_age, include, exclude, dangling, show_dsm,
-- force, containers (records with name and image), now. See docs/policies.md.
function M.plan(images, rules)
  if type(images) ~= "table" then
    usage("policy.plan: images must be a list, got " .. type(images))
  end
  rules = M.check_rules(rules)
  local keep = rules.keep
  local used = in_use_index(rules.containers)
  local plan = { kind = "plan", rules = rules, warnings = {} }
  local by_repository, repositories = {}, {}
  local seen = {}
  local exclude_hits, include_hits = {}, {}

  -- Work in a fixed order, so the plan does not depend on the order the NAS
  -- lists images in (which copy of a name listed twice counts, for one).
  -- The order is by repository, then name, then id, then newest first. Images
  -- are grouped by repository and each group is sorted on its own, so the
  -- work grows with the number of images, not faster.
  local groups, group_names = {}, {}
  for _, image in ipairs(images) do
    local dangling = is_dangling(image)
    -- The plan entry itself, with the fields the sort needs (removed below).
    local item = { image = image, name = format.image_name(image), id = normal_id(image.id),
                   created = format.known_time(image.created) and image.created or 0, dangling = dangling }
    local repository = dangling and "" or tostring(image.repository)
    local group = groups[repository]
    if not group then
      group = {}
      groups[repository] = group
      group_names[#group_names + 1] = repository
    end
    group[#group + 1] = item
  end
  table.sort(group_names)
  local function before(a, b)
    if a.name ~= b.name then
      return a.name < b.name
    end
    local a_id, b_id = a.id or "", b.id or ""
    if a_id ~= b_id then
      return a_id < b_id
    end
    return a.created > b.created
  end
  local ordered = {}
  for _, repository in ipairs(group_names) do
    local group = groups[repository]
    table.sort(group, before)
    for _, item in ipairs(group) do
      ordered[#ordered + 1] = item
    end
  end
  local any_container = next(used) ~= nil

  for _, item in ipairs(ordered) do
    local image = item.image
    local entry = item
    local dangling = item.dangling
    entry.created, entry.dangling = nil, nil
    plan[#plan + 1] = entry
    -- One delete per reference (per id for a dangling image), however often
    -- the inventory lists it.
    local identity = dangling and ("id:" .. tostring(item.id)) or entry.name
    local containers = any_container and containers_using(used, image)
    local excluded = rules.exclude_matchers and pattern.first_match(rules.exclude_matchers, image)
    if seen[identity] then
      set(entry, "keep", "duplicate", "listed twice by the NAS; handled once")
    elseif image.is_ddsm and not rules.show_dsm then
      set(entry, "keep", "dsm", "DSM's own image (is_ddsm); set show_dsm to include it")
    elseif containers then
      set(entry, "keep", "in_use", "used by container " .. table.concat(containers, ", "))
    elseif excluded then
      exclude_hits[excluded.pattern] = true
      set(entry, "keep", "exclude", string.format("matches exclude pattern %q", excluded.pattern))
    elseif rules.include_matchers and not pattern.first_match(rules.include_matchers, image, include_hits) then
      set(entry, "keep", "include", "matches no include pattern")
    elseif dangling then
      if not rules.dangling then
        set(entry, "keep", "dangling", "dangling; dangling images are kept unless dangling = true")
      else
        local old_enough, age_reason = age_selects(entry, rules, "dangling, but ")
        if old_enough then
          set(entry, "delete", "dangling", "dangling (no tag)" .. (age_reason and ", " .. age_reason or ""))
        end
      end
    else
      local group = by_repository[image.repository]
      if not group then
        group = {}
        by_repository[image.repository] = group
        repositories[#repositories + 1] = image.repository
      end
      group[#group + 1] = entry
    end
    seen[identity] = true
  end

  for _, repository in ipairs(repositories) do
    local group = by_repository[repository]
    -- The keep rule ranks the images of known age; an image of unknown age
    -- takes no place among the newest, it is kept by its own rule (or, under
    -- unknown_age = "delete", counts as the oldest).
    local known, unknown = {}, {}
    for _, entry in ipairs(group) do
      if format.known_time(entry.image.created) then
        known[#known + 1] = entry
      else
        unknown[#unknown + 1] = entry
      end
    end
    table.sort(known, function(a, b)
      return newer(a.image, b.image)
    end)
    table.sort(unknown, function(a, b)
      return tostring(a.image.tag) < tostring(b.image.tag)
    end)
    local ranked = known
    if rules.unknown_age == "delete" then
      for _, entry in ipairs(unknown) do
        ranked[#ranked + 1] = entry
      end
    else
      for _, entry in ipairs(unknown) do
        set(entry, "keep", "unknown_age", "unknown age (no creation time), kept unless unknown_age = delete (--unknown-age delete)")
      end
    end
    -- The reasons of this repository, made once: plans can have 100,000 entries.
    local kept_reason, beyond_reason = keep_reasons(keep, repository, rules.include_matchers ~= nil)
    local beyond_but = keep and (beyond_reason .. ", but ") or ""
    -- keep counts images, not tags: the tags of one image share its place,
    -- so "latest" next to "2.21.4" of the same image leaves room for the
    -- previous version.
    local rank_of_id, images_ranked = {}, 0
    for _, entry in ipairs(ranked) do
      local rank = entry.id and rank_of_id[entry.id]
      if not rank then
        images_ranked = images_ranked + 1
        rank = images_ranked
        if entry.id then
          rank_of_id[entry.id] = rank
        end
      end
      if keep == nil and rules.older_than_seconds == nil then
        set(entry, "keep", "no_rule", "no keep or older_than rule selects it")
      elseif keep ~= nil and rank <= keep then
        set(entry, "keep", "keep", kept_reason)
      else
        local old_enough, age_reason = age_selects(entry, rules, beyond_but)
        if old_enough then
          local parts = {}
          if keep then
            parts[#parts + 1] = beyond_reason
          end
          if age_reason then
            parts[#parts + 1] = age_reason
          elseif not format.known_time(entry.image.created) then
            parts[#parts + 1] = "unknown age (unknown_age = delete)"
          end
          local rule = keep and "keep" or "older_than"
          if keep and rules.older_than_seconds then
            rule = "keep+older_than"
          end
          set(entry, "delete", rule, table.concat(parts, "; "))
        end
      end
    end
  end

  -- Deleting a tag whose image another kept tag of the same repository names
  -- (kept by any rule) frees nothing and only removes a name people pull by,
  -- so keep it too.
  -- kept_names[repository][id] is the first kept tag of that image.
  local kept_names = {}
  for _, entry in ipairs(plan) do
    if entry.id and entry.action == "keep" and entry.rule ~= "duplicate" then
      local repository = tostring(entry.image.repository)
      local names = kept_names[repository] or {}
      kept_names[repository] = names
      names[entry.id] = names[entry.id] or entry.name
    end
  end
  for _, repository in ipairs(repositories) do
    local names = kept_names[tostring(repository)] or {}
    for _, entry in ipairs(by_repository[repository]) do
      local kept = entry.id and names[entry.id]
      if entry.action == "delete" and kept then
        set(entry, "keep", "same_image", string.format("same image as %s, which is kept", kept))
      end
    end
  end

  for _, matcher in ipairs(rules.exclude_matchers or {}) do
    if not exclude_hits[matcher.pattern] then
      plan.warnings[#plan.warnings + 1] = string.format(
        "exclude pattern %q matches no image on the NAS; check its spelling", matcher.pattern)
    end
  end
  for _, matcher in ipairs(rules.include_matchers or {}) do
    if not include_hits[matcher.pattern] then
      plan.warnings[#plan.warnings + 1] = string.format(
        "include pattern %q matches no image on the NAS; check its spelling", matcher.pattern)
    end
  end

  -- The entries were made in sorted order: by repository, then by name.
  return plan
end

--- Returns the bytes that deleting the selected entries frees: an image's size
-- counts once, and only when every tag of that image id is selected, because
-- docker only untags an image that another tag still names.
function M.bytes_freed(plan, selected)
  local remaining = {}
  for _, entry in ipairs(plan) do
    local id = normal_id(entry.image.id)
    if id ~= nil and not selected[entry] and entry.rule ~= "duplicate" then
      remaining[id] = true
    end
  end
  local counted, total = {}, 0
  for _, entry in ipairs(plan) do
    local id = normal_id(entry.image.id)
    if selected[entry] and not (id and remaining[id]) and not counted[id or entry] then
      counted[id or entry] = true
      total = total + (tonumber(entry.image.size) or 0)
    end
  end
  return total
end

--- Returns the entries of plan whose action is "delete", as a set.
function M.deletions(plan)
  local selected = {}
  for _, entry in ipairs(plan) do
    if entry.action == "delete" then
      selected[entry] = true
    end
  end
  return selected
end

--- Returns the number of entries plan selects for deletion.
function M.count_deletions(plan)
  local count = 0
  for _, entry in ipairs(plan) do
    if entry.action == "delete" then
      count = count + 1
    end
  end
  return count
end

-- Error kinds that mean the NAS could not be reached.
local unreachable_kinds = { network = true, tls = true, timeout = true }

local function interrupted(err)
  return (type(err) == "table" and err.kind == "interrupted") or core.interrupted()
end

--- Deletes the images the plan selects; a failure does not stop the others,
-- an interrupt stops after the current call. Returns the report:
--   {kind = "cleanup", dry_run =, deleted =, kept =, failed =, not_attempted =,
--    bytes_freed =, interrupted =, warnings =}
-- where failed entries carry the error. Under dry run image.delete sends nothing.
-- image.delete_many, where the module has it, deletes in batches.
local execute

function M.execute(plan, image, options)
  -- A signal stops the run after the current delete, so the report can list
  -- exactly what was deleted (see core.hold_interrupts).
  local held = core.hold_interrupts(true)
  local ok, report = pcall(execute, plan, image, options)
  core.hold_interrupts(held)
  if not ok then
    error(report, 0)
  end
  return report
end

execute = function(plan, image, options)
  options = options or {}
  local report = {
    kind = "cleanup", plan = plan, dry_run = options.dry_run or false, deleted = {}, kept = {},
    failed = {}, not_attempted = {}, bytes_freed = 0, interrupted = false,
    warnings = plan.warnings or {}, started = options.started or os.time(),
  }
  local delete_options = plan.rules and plan.rules.force and { force = true } or nil
  local pending = {}
  for _, entry in ipairs(plan) do
    if entry.action == "delete" then
      pending[#pending + 1] = entry
    else
      report.kept[#report.kept + 1] = entry
    end
  end

  local function succeeded(entry)
    unreachable_in_a_row = 0
    report.deleted[#report.deleted + 1] = entry
    if options.on_deleted then
      options.on_deleted(entry)
    end
  end
  -- The NAS refused the delete because a container uses the image: that is
  -- the protection a cleanup wants, so the image counts as kept, not failed.
  local function refused_in_use(entry, err)
    entry.action, entry.rule = "keep", "in_use"
    entry.reason = "used by a container (the NAS refused the delete)"
    entry.refused = err
    report.kept[#report.kept + 1] = entry
    if options.on_kept then
      options.on_kept(entry, err)
    end
  end

  local unreachable_in_a_row = 0
  local function failed(entry, err)
    if type(err) == "table" and err.code == 1002 then
      refused_in_use(entry, err)
      unreachable_in_a_row = 0
      return
    end
    entry.error = err
    report.failed[#report.failed + 1] = entry
    if options.on_failed then
      options.on_failed(entry, err)
    end
    if type(err) == "table" and unreachable_kinds[err.kind] then
      unreachable_in_a_row = unreachable_in_a_row + 1
      if unreachable_in_a_row >= 2 then
        report.unreachable = err
      end
    else
      unreachable_in_a_row = 0
    end
  end

  local index = 1
  local batch_size = options.batch_size or 20
  local batched = image.delete_many ~= nil and delete_options == nil
    and (image.offers == nil or image.offers("delete_many"))
  while index <= #pending do
    if core.interrupted() then
      report.interrupted = true
      break
    end
    -- Two transport failures in a row: the NAS is gone, so stop instead of
    -- failing every remaining image one by one.
    if report.unreachable then
      break
    end
    -- Batches only where the NAS deletes a batch in one call; one by one
    -- otherwise, so an interrupt stops after the current image.
    if batched and batch_size > 1 then
      local batch = {}
      for i = index, math.min(index + batch_size - 1, #pending) do
        batch[#batch + 1] = pending[i]
      end
      local records = {}
      for i, entry in ipairs(batch) do
        records[i] = entry.image
      end
      local ok, results = pcall(image.delete_many, records, { batch_size = #records })
      if not ok then
        for _, entry in ipairs(batch) do
          failed(entry, results)
        end
        index = index + #batch
        if interrupted(results) then
          report.interrupted = true
          break
        end
      else
        for i, entry in ipairs(batch) do
          local result = results[i] or { ok = false, error = "the NAS gave no result for this image" }
          if result.ok then
            succeeded(entry)
          else
            failed(entry, result.error)
          end
        end
        index = index + #batch
      end
    else
      local entry = pending[index]
      local ok, err = pcall(image.delete, entry.image, delete_options)
      index = index + 1
      if ok then
        succeeded(entry)
      else
        failed(entry, err)
        if interrupted(err) then
          report.interrupted = true
          break
        end
      end
    end
  end
  for i = index, #pending do
    report.not_attempted[#report.not_attempted + 1] = pending[i]
  end

  local deleted = {}
  for _, entry in ipairs(report.deleted) do
    deleted[entry] = true
  end
  report.bytes_freed = M.bytes_freed(plan, deleted)
  report.finished = os.time()
  return report
end

--- Runs a whole cleanup: lists the images (options.images, or image.list()),
-- plans with the rules in options, deletes (not under dry run) and returns the
-- report. options: the rules of policy.plan, plus image (the syno.image
-- module or a connection's), containers (a list of container records, a
-- function returning one, or a container module such as nas.container; by
-- default syno.container when image is the default module), dry_run,
-- on_plan(plan) (which may turn deletes into keeps, never the reverse),
-- on_deleted(entry), on_failed(entry, err), batch_size.
function M.cleanup(options)
  if type(options) ~= "table" then
    usage("policy.cleanup: expected a table of rules, such as {keep = 3}")
  end
  local rules, hooks = {}, {}
  local hook_names = { image = true, images = true, dry_run = true, on_plan = true, on_deleted = true,
                       on_failed = true, on_kept = true, batch_size = true, containers = true }
  for key, value in pairs(options) do
    if hook_names[key] then
      hooks[key] = value
    else
      rules[key] = value
    end
  end
  -- Check the rules before anything goes over the wire.
  M.check_rules(rules)
  local image = hooks.image or require "syno.image"
  local started = os.time()
  local images = hooks.images
  if images == nil then
    images = image.list { show_dsm = rules.show_dsm or false }
  end
  -- Protect the images containers use whenever the NAS lists containers.
  local containers = hooks.containers
  if containers == nil and hooks.image == nil then
    containers = require("syno").container
  end
  if type(containers) == "table" and containers.list then
    if containers.offered == nil or containers.offered() then
      rules.containers = containers.list()
    end
  elseif type(containers) == "function" then
    rules.containers = containers()
  elseif containers ~= nil then
    rules.containers = containers
  end
  local plan = M.plan(images, rules)
  if image.offers and not image.offers("delete_untagged") then
    -- Container Manager deletes images by repository and tag only.
    for _, entry in ipairs(plan) do
      if entry.action == "delete" and entry.rule == "dangling" then
        entry.action, entry.rule = "keep", "untagged"
        entry.reason = "dangling, but this NAS cannot delete an untagged image by name; "
          .. "DSM's Container Manager removes them with image.prune()"
      end
    end
  end
  if hooks.on_plan then
    -- on_plan may keep more images, never delete more: what a rule protects
    -- stays protected whatever a snippet does.
    local kept = {}
    for _, entry in ipairs(plan) do
      kept[entry] = entry.action == "keep" or nil
    end
    hooks.on_plan(plan)
    for _, entry in ipairs(plan) do
      if kept[entry] and entry.action ~= "keep" then
        usage(string.format("policy.cleanup: on_plan changed %s from keep (%s) to %s; on_plan may only "
          .. "keep more images", entry.name, entry.reason, tostring(entry.action)))
      end
    end
  end
  local dry_run = hooks.dry_run
  if dry_run == nil then
    dry_run = image.dry_run and image.dry_run() or false
  end
  if dry_run then
    if rules.containers == nil and M.count_deletions(plan) > 0 then
      -- The document dialect has no container list: the NAS itself refuses
      -- to delete an image in use, which only a real run can find out.
      plan.warnings[#plan.warnings + 1] = "this NAS does not list its containers, so this plan "
        .. "cannot tell which images a container uses; the NAS refuses to delete those, and a real "
        .. "run reports them as in use"
    end
    local report = M.execute(plan, { delete = function() return true end }, {
      dry_run = true, started = started, on_deleted = hooks.on_deleted })
    return report
  end
  return M.execute(plan, image, { started = started, on_deleted = hooks.on_deleted,
                                  on_failed = hooks.on_failed, on_kept = hooks.on_kept,
                                  batch_size = hooks.batch_size })
end

M.pull = function(options)
  return require("syno.pull").run(options)
end

--- Formats a plan or a report: options.format = "table" (the default) or "json".
function M.report(value, options)
  return require("syno.report").format(value, options)
end

return M
