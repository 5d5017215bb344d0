--- Formats cleanup plans, cleanup reports and pull reports as a table for
-- people or as JSON for programs (--json, --notify-command).
--
-- The JSON has sorted keys and fixed field names; docs/policies.md lists them.

local format = require "syno.format"

local M = {}

-- JSON ---------------------------------------------------------------------

local array_mt = { __name = "json array" }

--- Marks t as a JSON array, so an empty one encodes as [] and not {}.
function M.array(t)
  return setmetatable(t or {}, array_mt)
end

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r",
  ["\t"] = "\\t",
}

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function encode(value, out, indent, depth)
  local kind = type(value)
  if kind == "nil" then
    out[#out + 1] = "null"
  elseif kind == "boolean" then
    out[#out + 1] = tostring(value)
  elseif kind == "number" then
    if value ~= value or value == math.huge or value == -math.huge then
      out[#out + 1] = "null"
    elseif math.type(value) == "float" and value == math.floor(value) and math.abs(value) < 2 ^ 53 then
      out[#out + 1] = string.format("%d", value)
    else
      out[#out + 1] = tostring(value)
    end
  elseif kind == "string" then
    out[#out + 1] = encode_string(value)
  elseif kind == "table" then
    local pad = indent and ("\n" .. string.rep(indent, depth + 1)) or ""
    local close = indent and ("\n" .. string.rep(indent, depth)) or ""
    local separator = indent and ": " or ":"
    if getmetatable(value) == array_mt or (#value > 0 and next(value, #value) == nil) then
      if #value == 0 then
        out[#out + 1] = "[]"
        return
      end
      out[#out + 1] = "["
      for i, item in ipairs(value) do
        out[#out + 1] = (i > 1 and "," or "") .. pad
        encode(item, out, indent, depth + 1)
      end
      out[#out + 1] = close .. "]"
    else
      local keys = {}
      for key in pairs(value) do
        keys[#keys + 1] = tostring(key)
      end
      table.sort(keys)
      if #keys == 0 then
        out[#out + 1] = "{}"
        return
      end
      out[#out + 1] = "{"
      for i, key in ipairs(keys) do
        out[#out + 1] = (i > 1 and "," or "") .. pad .. encode_string(key) .. separator
        local item = value[key]
        if item == nil then
          item = value[tonumber(key)]
        end
        encode(item, out, indent, depth + 1)
      end
      out[#out + 1] = close .. "}"
    end
  else
    out[#out + 1] = encode_string(tostring(value))
  end
end

--- Encodes value as JSON with sorted keys; options.indent (a string) pretty-prints.
function M.json(value, options)
  local out = {}
  encode(value, out, options and options.indent, 0)
  return table.concat(out)
end

-- Plain data ---------------------------------------------------------------

local function iso_time(t)
  if math.type(t) ~= "integer" then
    return nil
  end
  return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end
M.iso_time = iso_time

--- Returns the fields of an error object that belong in a report.
function M.error_data(err)
  if type(err) == "table" then
    return { kind = err.kind, code = err.code, message = tostring(err.message or err) }
  end
  return { kind = "error", message = tostring(err) }
end

local function image_data(entry, result)
  local image = entry.image
  return {
    name = entry.name,
    repository = image.repository,
    tag = image.tag,
    id = image.id,
    size = image.size,
    created = format.known_time(image.created) and iso_time(math.tointeger(image.created)) or nil,
    action = entry.action,
    rule = entry.rule,
    reason = entry.reason,
    result = result,
    error = entry.error and M.error_data(entry.error) or nil,
  }
end

local function rules_data(rules)
  if not rules then
    return nil
  end
  local include, exclude = M.array(), M.array()
  for _, matcher in ipairs(rules.include_matchers or {}) do
    include[#include + 1] = matcher.pattern
  end
  for _, matcher in ipairs(rules.exclude_matchers or {}) do
    exclude[#exclude + 1] = matcher.pattern
  end
  return {
    keep = rules.keep, older_than = rules.older_than, unknown_age = rules.unknown_age,
    include = include, exclude = exclude, dangling = rules.dangling or false,
    show_dsm = rules.show_dsm or false, force = rules.force or false,
  }
end

-- Returns a map entry -> result word for a cleanup report.
local function results_of(report)
  local results = {}
  for _, entry in ipairs(report.deleted) do
    results[entry] = report.dry_run and "would delete" or "deleted"
  end
  for _, entry in ipairs(report.failed) do
    results[entry] = "failed"
  end
  for _, entry in ipairs(report.not_attempted) do
    results[entry] = "not attempted"
  end
  for _, entry in ipairs(report.kept) do
    results[entry] = entry.refused and "in use" or "kept"
  end
  return results
end

--- Returns plain data (tables of strings, numbers and booleans) for a plan,
-- a cleanup report or a pull report: what --json prints.
function M.data(value)
  if value.kind == "pull" then
    local images = M.array()
    for _, item in ipairs(value.images) do
      images[#images + 1] = {
        reference = item.reference, result = item.result, id = item.id,
        previous_id = item.previous_id, task_id = item.task_id, seconds = item.seconds,
        detail = item.detail, error = item.error and M.error_data(item.error) or nil,
      }
    end
    return {
      kind = "pull", dry_run = value.dry_run or false, interrupted = value.interrupted or false,
      unreachable = value.unreachable and M.error_data(value.unreachable) or nil,
      started = iso_time(value.started), finished = iso_time(value.finished),
      summary = value.summary, images = images,
    }
  end

  local plan = value.kind == "cleanup" and value.plan or value
  local results = value.kind == "cleanup" and results_of(value) or {}
  local images = M.array()
  -- planned counts what the plan selected, including the deletes the NAS
  -- then refused because a container uses the image (those are kept now).
  local planned, in_use = 0, 0
  for _, entry in ipairs(plan) do
    images[#images + 1] = image_data(entry, results[entry])
    if entry.action == "delete" then
      planned = planned + 1
    elseif entry.refused then
      planned = planned + 1
      in_use = in_use + 1
    end
  end
  local policy = require "syno.policy"
  local data = {
    kind = value.kind == "cleanup" and "cleanup" or "plan",
    rules = rules_data(plan.rules),
    warnings = M.array({ table.unpack(plan.warnings or {}) }),
    images = images,
  }
  if value.kind == "cleanup" then
    data.dry_run = value.dry_run
    data.interrupted = value.interrupted
    data.unreachable = value.unreachable and M.error_data(value.unreachable) or nil
    data.started, data.finished = iso_time(value.started), iso_time(value.finished)
    -- Under dry run nothing is deleted: the selected images count as would_delete.
    local deleted = #value.deleted
    data.summary = {
      images = #plan, planned = planned, deleted = value.dry_run and 0 or deleted,
      would_delete = value.dry_run and deleted or 0, kept = #value.kept, in_use = in_use,
      failed = #value.failed, not_attempted = #value.not_attempted,
      bytes_freed = value.dry_run and 0 or value.bytes_freed,
      would_free = value.dry_run and value.bytes_freed or 0,
    }
  else
    data.summary = { images = #plan, planned = planned,
                     bytes_freed = policy.bytes_freed(plan, policy.deletions(plan)) }
  end
  return data
end

-- Tables -------------------------------------------------------------------

local function pad(text, width)
  text = tostring(text)
  if #text >= width then
    return text
  end
  return text .. string.rep(" ", width - #text)
end

local function plan_table(plan, results, now)
  local lines = {}
  local name_width = 5
  for _, entry in ipairs(plan) do
    name_width = math.max(name_width, #entry.name)
  end
  name_width = math.min(name_width, 60)
  local action_width = results and 13 or 6
  lines[1] = string.format("%s %s %10s  %-16s %s", pad("ACTION", action_width), pad("IMAGE", name_width),
    "SIZE", "CREATED", "REASON")
  for _, entry in ipairs(plan) do
    local action = results and results[entry] or entry.action
    local reason = entry.reason
    if entry.error then
      reason = reason .. "; error: " .. tostring(entry.error)
    end
    lines[#lines + 1] = string.format("%s %s %10s  %-16s %s", pad(action, action_width),
      pad(entry.name, name_width), format.size(entry.image.size), format.age(entry.image.created, now), reason)
  end
  return lines
end

local function pull_summary(report)
  local s = report.summary
  local line = string.format("pulled %d, up to date %d, started %d, failed %d%s", s.pulled, s.up_to_date,
    s.started, s.failed, report.dry_run and " (dry run: nothing was pulled)" or "")
  if (s.not_attempted or 0) > 0 then
    line = line .. string.format(", not attempted %d (%s)", s.not_attempted,
      report.unreachable and "the NAS could not be reached" or "interrupted")
  end
  return line
end

local function summary_line(data)
  if data.kind == "pull" then
    return pull_summary(data)
  end
  if data.kind ~= nil and data.summary == nil then
    data = M.data(data)
  end
  local summary = data.summary
  if data.kind == "plan" then
    return string.format("plan: delete %d of %d images, freeing %s", summary.planned, summary.images,
      format.size(summary.bytes_freed))
  end
  if data.dry_run then
    return string.format("dry run: would delete %d of %d images, freeing %s; nothing was deleted",
      summary.would_delete, summary.images, format.size(summary.would_free))
  end
  local line = string.format("deleted %d of %d planned images, freeing %s; ", summary.deleted,
    summary.planned, format.size(summary.bytes_freed))
  if (summary.in_use or 0) > 0 then
    line = line .. string.format("%d in use (the NAS refused to delete %s), ", summary.in_use,
      summary.in_use == 1 and "it" or "them")
  end
  line = line .. string.format("kept %d, failed %d", summary.kept, summary.failed)
  if summary.not_attempted > 0 then
    line = line .. string.format(", not attempted %d (%s)", summary.not_attempted,
      data.unreachable and "the NAS could not be reached" or "interrupted")
  end
  return line
end

local function pull_table(report)
  local lines = { string.format("%-48s %-14s %s", "IMAGE", "RESULT", "DETAIL") }
  for _, item in ipairs(report.images) do
    local detail = item.detail or ""
    if item.error then
      detail = tostring(item.error)
    end
    lines[#lines + 1] = string.format("%-48s %-14s %s", item.reference, item.result, detail)
  end
  lines[#lines + 1] = pull_summary(report)
  return lines
end

--- Returns the one-line summary of a plan or a cleanup report.
M.summary_line = summary_line

--- Formats a plan or report. options.format: "table" (default) or "json";
-- options.now: the time ages are relative to.
function M.format(value, options)
  options = options or {}
  if type(value) ~= "table" or (value.kind ~= "plan" and value.kind ~= "cleanup" and value.kind ~= "pull") then
    error("policy.report: expected a plan or a report from syno.policy", 2)
  end
  local kind = options.format or "table"
  if kind == "json" then
    return M.json(M.data(value), { indent = options.indent })
  elseif kind ~= "table" then
    error(string.format("policy.report: format must be \"table\" or \"json\", got %q", tostring(kind)), 2)
  end
  if value.kind == "pull" then
    return table.concat(pull_table(value), "\n")
  end
  local data = M.data(value)
  local plan = value.kind == "cleanup" and value.plan or value
  local lines = plan_table(plan, value.kind == "cleanup" and results_of(value) or nil, options.now)
  for _, warning in ipairs(plan.warnings or {}) do
    lines[#lines + 1] = "warning: " .. warning
  end
  lines[#lines + 1] = summary_line(data)
  return table.concat(lines, "\n")
end

return M
