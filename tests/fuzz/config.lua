-- Fuzz driver for the connection settings: syno.config reads command-line
-- flags, SYNO_* environment variables and the profile file, and the result
-- builds a session (syno.dsm.new) as the default connection does. Both must
-- return or raise a syno.Error of kind "usage"; a Lua runtime error or a
-- crash is a bug. No request is sent.
--
-- Input: fields separated by NUL bytes, in this order:
--   1      flags, one "name=value" per line (url, user, password_file, otp,
--          cacert, profile, timeout, insecure, dry_run), as the host passes them
--   2-10   SYNO_URL, SYNO_USER, SYNO_PASSWORD_FILE, SYNO_OTP, SYNO_CACERT,
--          SYNO_INSECURE, SYNO_TIMEOUT, SYNO_DRY_RUN, SYNO_PROFILE; a missing
--          field leaves the variable unset
--   11...  the profile file (NUL bytes from here on belong to it); without
--          this field there is no profile file

local core = require "syno.core"
local config = require "syno.config"
local dsm = require "syno.dsm"
local errors = require "syno.errors"

local ENV_NAMES = {
  "SYNO_URL", "SYNO_USER", "SYNO_PASSWORD_FILE", "SYNO_OTP", "SYNO_CACERT",
  "SYNO_INSECURE", "SYNO_TIMEOUT", "SYNO_DRY_RUN", "SYNO_PROFILE",
}
local STRING_FLAGS = { url = true, user = true, password_file = true, otp = true, cacert = true, profile = true }
local BOOLEAN_FLAGS = { insecure = true, dry_run = true }
local SETTING_TYPES = {
  url = "string", user = "string", password_file = "string", otp = "string", cacert = "string",
  insecure = "boolean", timeout = "number", dry_run = "boolean",
}

core.message = function() end

-- The profile file lives in a folder of its own under TMPDIR, which
-- tests/fuzz/run points at a folder it removes afterwards.
-- NOTE: a target run by hand, without tests/fuzz/run, leaves the folder in /tmp.
local base = string.format("%s/synosh-fuzz-config.%d", os.getenv("TMPDIR") or "/tmp", math.random(1, 1 << 30))
assert(os.execute("mkdir -p '" .. base .. "/synosh'"), "cannot create " .. base)
local profile_path = base .. "/synosh/config.lua"

-- The environment that the code under test reads through os.getenv.
local real_getenv = os.getenv
local environment = {}
os.getenv = function(name)
  if type(name) ~= "string" and type(name) ~= "number" then
    error("bad argument #1 to 'getenv' (string expected, got " .. type(name) .. ")")
  end
  name = tostring(name)
  if name == "XDG_CONFIG_HOME" then
    return base
  elseif name == "HOME" then
    return real_getenv("HOME")
  end
  return environment[name]
end

-- Returns the flags as src/main.c publishes them: strings, a timeout that
-- src/cli.c has checked, and booleans.
local function parse_flags(text)
  local flags = {}
  for name, value in text:gmatch("([%w_]+)=([^\n]*)") do
    if STRING_FLAGS[name] and value ~= "" then
      flags[name] = value
    elseif BOOLEAN_FLAGS[name] then
      flags[name] = true
    elseif name == "timeout" then
      local seconds = tonumber(value)
      if seconds and seconds > 0 and seconds <= 86400 then
        flags.timeout = seconds
      end
    end
  end
  return flags
end

local function check(condition, message)
  if not condition then
    error(message, 0)
  end
end

local function check_usage_error(err, where)
  check(errors.is(err), string.format("%s raised a plain Lua error: %s", where, tostring(err)))
  check(err.kind == "usage", string.format("%s raised an error of kind %s", where, tostring(err.kind)))
  check(type(err.message) == "string", where .. " raised an error without a message")
end

local function check_settings(settings)
  for name, expected in pairs(SETTING_TYPES) do
    local value = settings[name]
    check(value == nil or type(value) == expected,
      string.format("setting %s is a %s, not a %s", name, type(value), expected))
  end
  if settings.timeout ~= nil then
    local timeout = settings.timeout
    check(timeout > 0 and timeout <= 86400, "accepted a timeout outside 0 to 86400 seconds: " .. tostring(timeout))
  end
end

return function(input)
  local fields = {}
  for field in (input .. "\0"):gmatch("(.-)%z") do
    fields[#fields + 1] = field
  end
  environment = {}
  for index, name in ipairs(ENV_NAMES) do
    environment[name] = fields[index + 1]
  end
  os.remove(profile_path)
  if #fields >= 11 then
    local file = assert(io.open(profile_path, "wb"))
    file:write(table.concat(fields, "\0", 11))
    file:close()
  end

  local ok, settings = pcall(config.resolve, parse_flags(fields[1]), os.getenv)
  if not ok then
    check_usage_error(settings, "config.resolve")
    return
  end
  check_settings(settings)

  local created, session = pcall(dsm.new, {
    url = settings.url, user = settings.user, otp = settings.otp, cacert = settings.cacert,
    insecure = settings.insecure, timeout = settings.timeout, dry_run = settings.dry_run,
    password = "fuzz-password",
  })
  if not created then
    check_usage_error(session, "dsm.new")
    return
  end
  local closed, err = session:close()
  check(closed, "closing a session that never logged in failed: " .. tostring(err))
end
