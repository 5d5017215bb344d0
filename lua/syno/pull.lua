--- The pull policy behind policy.pull: pulls a list of references and, with
-- wait, follows each pull to its end.
--
-- Where the NAS reports pull progress (image.pull_status, Container Manager),
-- synosh polls it. Otherwise it reads the image back until its id changes:
-- a new image is "pulled"; an image that was there and has not changed after
-- `settle` seconds is "up to date" (the NAS may still be pulling a large
-- update, and the detail mentions that).

local core = require "syno.core"
local errors = require "syno.errors"
local format = require "syno.format"
local reference = require "syno.reference"

local M = {}

local function usage(message)
  errors.raise { kind = "usage", message = message }
end

local allowed = {
  images = "table", wait = "boolean", timeout = "number", settle = "number", image = "table",
  dry_run = "boolean", registry = "string", on_result = "function", progress = "boolean",
}

-- Reads image reference back; nil when the NAS has no such image.
local function read_back(image, ref)
  local ok, result = pcall(image.get, ref)
  if ok then
    return result
  end
  if type(result) == "table" and result.kind == "not_found" then
    return nil
  end
  error(result, 0)
end

-- Progress output: one rewritten line on a terminal, a plain line every
-- `every` seconds in a log, nothing under --quiet.
local function progress_reporter(ref, enabled)
  local on_terminal = core.isatty("stderr")
  local last_line = 0  -- the first log line comes after 10 s
  local shown = false
  local reporter = {}
  function reporter.update(elapsed, detail)
    if not enabled or not core.message_enabled("info") then
      return
    end
    local text = string.format("pulling %s: %s, %d s", ref, detail, math.floor(elapsed))
    if on_terminal then
      io.stderr:write("\r\27[K", text)
      io.stderr:flush()
      shown = true
    elseif elapsed - last_line >= 10 then
      core.message("info", text)
      last_line = elapsed
    end
  end
  function reporter.done()
    if shown then
      io.stderr:write("\r\27[K")
      io.stderr:flush()
    end
  end
  return reporter
end

-- Waits for a pull through the NAS's pull status. Returns result, detail.
local function wait_with_status(image, ref, task_id, before, options, reporter)
  local started = core.monotonic()
  local interval = 0.25
  while true do
    local status = image.pull_status(task_id)
    local elapsed = core.monotonic() - started
    if status.finished then
      break
    end
    reporter.update(elapsed, status.downloaded and (format.size(status.downloaded) .. " downloaded")
      or "in progress")
    if elapsed >= options.timeout then
      errors.raise { kind = "timeout", message = string.format(
        "pull of %s did not finish within %g s; it may still run on the NAS", ref, options.timeout) }
    end
    if not core.sleep(interval) then
      errors.raise { kind = "interrupted", message = "interrupted while waiting for the pull of " .. ref }
    end
    interval = math.min(interval * 2, 5)
  end
  local after = read_back(image, ref)
  if not after then
    errors.raise { kind = "api", message = string.format(
      "the NAS reported the pull of %s finished, but the image is not there", ref) }
  end
  if before and before.id == after.id then
    return "up to date", "the image did not change", after
  end
  return "pulled", nil, after
end

-- Waits for a pull by reading the image back. Returns result, detail, image.
local function wait_by_reading(image, ref, before, options, reporter)
  local started = core.monotonic()
  local interval = 0.25
  while true do
    local after = read_back(image, ref)
    local elapsed = core.monotonic() - started
    if after and (not before or after.id ~= before.id) then
      return "pulled", nil, after
    end
    local settle = math.min(options.settle, options.timeout)
    if before and elapsed >= settle then
      return "up to date", string.format("unchanged after %g s (or the NAS is still pulling a large update)",
        settle), after or before
    end
    if elapsed >= options.timeout then
      errors.raise { kind = "timeout", message = string.format(
        "%s did not appear on the NAS within %g s; the pull may still run, or have failed there",
        ref, options.timeout) }
    end
    reporter.update(elapsed, "waiting for the image")
    if not core.sleep(interval) then
      errors.raise { kind = "interrupted", message = "interrupted while waiting for the pull of " .. ref }
    end
    interval = math.min(interval * 2, 5)
  end
end

--- Pulls options.images (a list of references). Returns the report
--   {kind = "pull", images = {{reference, result, detail, id, previous_id,
--    task_id, seconds, error}}, summary = {pulled, up_to_date, started,
--    failed}, dry_run, interrupted, started, finished}
-- result is "pulled", "up to date", "started" (without wait), "would pull"
-- (dry run), "failed" or "not attempted" (after an interrupt).
local run

function M.run(options)
  -- A signal stops the run after the current call, and the report marks it interrupted.
  local held = core.hold_interrupts(true)
  local ok, report = pcall(run, options)
  core.hold_interrupts(held)
  if not ok then
    error(report, 0)
  end
  return report
end

run = function(options)
  if type(options) ~= "table" then
    usage("policy.pull: expected a table such as {images = {\"nginx:1.27\"}, wait = true}")
  end
  for key, value in pairs(options) do
    if not allowed[key] then
      usage(string.format("policy.pull: unknown option %q", tostring(key)))
    end
    if type(value) ~= allowed[key] then
      usage(string.format("policy.pull: %s must be a %s, got %s", key, allowed[key], type(value)))
    end
  end
  local timeout = options.timeout or 600
  local settle = options.settle or 30
  if timeout <= 0 or settle <= 0 then
    usage("policy.pull: timeout and settle must be numbers of seconds greater than 0")
  end
  -- Check every reference before the first pull.
  local references = {}
  for i, text in ipairs(options.images or {}) do
    if type(text) ~= "string" then
      usage(string.format("policy.pull: image %d must be a reference string, got %s", i, type(text)))
    end
    local ref, message = reference.parse(text, { default_tag = "latest" })
    if not ref then
      usage("policy.pull: " .. message)
    end
    references[#references + 1] = reference.format(ref)
  end
  if #references == 0 then
    usage("policy.pull: no image to pull; give images = {\"repository:tag\", ...}")
  end

  local image = options.image or require "syno.image"
  local dry_run = options.dry_run
  if dry_run == nil then
    dry_run = image.dry_run and image.dry_run() or false
  end
  local report = {
    kind = "pull", images = {}, dry_run = dry_run, interrupted = false, started = os.time(),
    summary = { pulled = 0, up_to_date = 0, started = 0, failed = 0, not_attempted = 0 },
  }
  local counters = { pulled = "pulled", ["up to date"] = "up_to_date", started = "started",
                     ["would pull"] = "started", failed = "failed", ["not attempted"] = "not_attempted" }
  local wait_options = { timeout = timeout, settle = settle }

  local unreachable_in_a_row = 0
  for _, ref in ipairs(references) do
    local item = { reference = ref }
    report.images[#report.images + 1] = item
    if report.unreachable then
      -- Two transport failures in a row: the NAS is gone.
      item.result = "not attempted"
    elseif report.interrupted or core.interrupted() then
      report.interrupted = true
      item.result = "not attempted"
    else
      local started = core.monotonic()
      local reporter = progress_reporter(ref, options.progress ~= false)
      local ok, err = pcall(function()
        local before = read_back(image, ref)
        item.previous_id = before and before.id
        if dry_run then
          item.result = "would pull"
          return
        end
        item.task_id = image.pull(ref, options.registry and { registry = options.registry } or nil)
        if not options.wait then
          item.result = "started"
          return
        end
        local result, detail, after
        if item.task_id ~= nil and image.offers and image.offers("pull_status") then
          result, detail, after = wait_with_status(image, ref, item.task_id, before, wait_options, reporter)
        else
          result, detail, after = wait_by_reading(image, ref, before, wait_options, reporter)
        end
        item.result, item.detail, item.id = result, detail, after and after.id
      end)
      reporter.done()
      item.seconds = math.floor((core.monotonic() - started) * 10 + 0.5) / 10
      if not ok then
        item.result = "failed"
        item.error = err
        if type(err) == "table" and err.kind == "interrupted" or core.interrupted() then
          report.interrupted = true
        end
        if type(err) == "table" and (err.kind == "network" or err.kind == "tls") then
          unreachable_in_a_row = unreachable_in_a_row + 1
          if unreachable_in_a_row >= 2 then
            report.unreachable = err
          end
        else
          unreachable_in_a_row = 0
        end
      else
        unreachable_in_a_row = 0
      end
    end
    local counter = counters[item.result]
    if counter then
      report.summary[counter] = report.summary[counter] + 1
    end
    if options.on_result then
      options.on_result(item)
    end
  end
  report.finished = os.time()
  return report
end

return M
