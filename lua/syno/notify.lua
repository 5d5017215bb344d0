--- The notification of --notify-command: at the end of a run, the command
-- gets the script's report (or the error) as JSON on standard input.
--
-- This module needs no session and no settings, so the host can run it even
-- when the run failed before syno could load (a missing profile, say).

local core = require "syno.core"

local M = {}

-- Kept before --sandbox replaces io.popen: the notify command comes from the
-- user's command line, not from the script.
local popen = io.popen

-- The report a script handed to syno.notify.
local pending_report

--- Sets the report that the command gets at the end of the run.
function M.set_report(report)
  pending_report = report
end

--- Runs command with sh -c and text on its standard input. Returns true, or
-- false after a warning when the command cannot start or fails.
local function run_command(command, text)
  local pipe, message = popen(command, "w")
  if not pipe then
    core.message("warning", string.format("cannot run the notify command: %s", tostring(message)))
    return false
  end
  pipe:write(text, "\n")
  local ok, how, code = pipe:close()
  if not ok then
    core.message("warning", string.format("the notify command %s with %s %s", how == "signal"
      and "was killed" or "exited", how == "signal" and "signal" or "status", tostring(code)))
    return false
  end
  return true
end
M.run = run_command

-- Returns the NAS URL of the run, or nil when the settings cannot be read.
local function nas_url(options)
  local ok, settings = pcall(function()
    return require("syno.config").resolve(options)
  end)
  if ok then
    return settings.url
  end
  return options.url or os.getenv("SYNO_URL")
end

--- Called by the host when the run ends, with its exit status and the error
-- line (or nil): runs the --notify-command command, if one was given.
function M.finish(status, message)
  local options = package.loaded["syno.options"] or {}
  local command = options.notify_command
  if not command then
    return
  end
  local report = require "syno.report"
  local payload = { kind = "run" }
  if pending_report then
    local ok, data = pcall(report.data, pending_report)
    if ok then
      payload = data
    end
  end
  payload.exit_status = status
  payload.status = status == 0 and "ok" or "failed"
  payload.error = message
  payload.script = type(arg) == "table" and arg[0] or nil
  payload.nas = nas_url(options)
  payload.synosh = core.version
  run_command(command, report.json(payload))
end

return M
