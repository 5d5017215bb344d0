--- Connection settings: command-line flags beat environment variables, which
-- beat the chosen profile.
--
-- Profiles live in $XDG_CONFIG_HOME/synosh/config.lua (default
-- ~/.config/synosh/config.lua), a Lua file that returns a table of profiles:
--
--   return {
--     default = { url = "https://nas.local:5001", user = "admin",
--                 password_file = os.getenv("HOME") .. "/.config/synosh/nas.pass" },
--     office  = { url = "https://10.0.0.5:5001", user = "ops", cacert = "/etc/ssl/office-nas.pem" },
--   }
--
-- The profile named "default" applies when no profile is chosen. The file runs
-- with only os.getenv available, and a password is never read from it.

local core = require "syno.core"
local errors = require "syno.errors"

local M = {}

-- Each setting, with its environment variable (if any) and value type.
local settings = {
  { name = "url",           env = "SYNO_URL",           type = "string" },
  { name = "user",          env = "SYNO_USER",          type = "string" },
  { name = "password_file", env = "SYNO_PASSWORD_FILE", type = "string" },
  { name = "otp",           env = "SYNO_OTP",           type = "string" },
  { name = "cacert",        env = "SYNO_CACERT",        type = "string" },
  { name = "pinned_pubkey", env = "SYNO_PINNED_PUBKEY", type = "string" },
  { name = "insecure",      env = "SYNO_INSECURE",      type = "boolean" },
  { name = "timeout",       env = "SYNO_TIMEOUT",       type = "number" },
  { name = "dry_run",       env = "SYNO_DRY_RUN",       type = "boolean" },
  { name = "dialect",       env = "SYNO_DIALECT",       type = "string" },
  { name = "remember_device",                           type = "string" },
}

-- The values of the dialect setting.
local dialects = { auto = true, document = true, ["container-manager"] = true }

local known = {}
for _, setting in ipairs(settings) do
  known[setting.name] = setting
end

local function usage(message)
  errors.raise { kind = "usage", message = message }
end

local function env_boolean(name, text)
  local lowered = text:lower()
  if lowered == "1" or lowered == "true" or lowered == "yes" then
    return true
  elseif lowered == "" or lowered == "0" or lowered == "false" or lowered == "no" then
    return false
  end
  usage(string.format("invalid %s=%q: use 1 or 0", name, text))
end

-- The maximum timeout, in seconds: a day, as src/cli.c allows for --timeout.
local MAX_TIMEOUT = 86400

-- Returns whether seconds is a valid timeout; NaN fails both comparisons.
local function valid_timeout(seconds)
  return seconds > 0 and seconds <= MAX_TIMEOUT
end

local function env_number(name, text)
  local number = tonumber(text)
  if not number or not valid_timeout(number) then
    usage(string.format("invalid %s=%q: give a number of seconds greater than 0 and at most %d "
      .. "(a day), such as 30", name, text, MAX_TIMEOUT))
  end
  return number
end

--- Returns the path of the profile file.
function M.path()
  local base = os.getenv("XDG_CONFIG_HOME")
  if not base or base == "" then
    base = (os.getenv("HOME") or ".") .. "/.config"
  end
  return base .. "/synosh/config.lua"
end

local function check_profile(name, profile, path)
  if type(profile) ~= "table" then
    usage(string.format("invalid profile %q in %s: expected a table, got %s", name, path, type(profile)))
  end
  for key, value in pairs(profile) do
    if key == "password" then
      usage(string.format("profile %q in %s sets a password; store it in a file "
        .. "(chmod 600) and set password_file instead", name, path))
    end
    local setting = known[key]
    if not setting then
      usage(string.format("unknown setting %q in profile %q of %s", tostring(key), name, path))
    end
    if type(value) ~= setting.type then
      usage(string.format("invalid %s in profile %q of %s: expected a %s, got %s",
        key, name, path, setting.type, type(value)))
    end
    if key == "timeout" and not valid_timeout(value) then
      usage(string.format("invalid timeout %s in profile %q of %s: give a number of seconds "
        .. "greater than 0 and at most %d (a day)", tostring(value), name, path, MAX_TIMEOUT))
    end
    -- A profile is Lua, not a shell, so "~/" would stay literal; expand it
    -- as people expect it to be.
    if (key == "password_file" or key == "cacert") and value:sub(1, 2) == "~/" then
      local home = os.getenv("HOME")
      if home and home ~= "" then
        profile[key] = home .. value:sub(2)
      end
    end
    if key == "dialect" and not dialects[value] then
      usage(string.format("invalid dialect %q in profile %q of %s: use auto, document or "
        .. "container-manager", value, name, path))
    end
  end
  return profile
end

--- Loads the profile file and returns the chosen profile, or an empty table.
-- name is the chosen profile, or nil for "default" when the file has one.
function M.load_profile(name, path)
  path = path or M.path()
  local file = io.open(path, "r")
  if not file then
    if name then
      usage(string.format("profile %q not found: %s does not exist", name, path))
    end
    return {}
  end
  file:close()
  local mode = core.file_mode(path)
  if mode and mode & 0x12 ~= 0 then
    core.message("warning", string.format("profile file %s is writable by other "
      .. "users (mode %04o), who could point synosh at another NAS; run: chmod go-w %s", path, mode, path))
  end

  local chunk, message = loadfile(path, "t", { os = { getenv = os.getenv } })
  if not chunk then
    usage(string.format("invalid profile file: %s", message))
  end
  local ok, profiles = pcall(chunk)
  if not ok then
    usage(string.format("invalid profile file %s: %s", path, tostring(profiles)))
  end
  if type(profiles) ~= "table" then
    usage(string.format("invalid profile file %s: it must return a table of profiles", path))
  end
  if name then
    if profiles[name] == nil then
      local names = {}
      for key in pairs(profiles) do
        names[#names + 1] = tostring(key)
      end
      table.sort(names)
      usage(string.format("profile %q not found in %s (profiles: %s)", name, path,
        #names > 0 and table.concat(names, ", ") or "none"))
    end
    return check_profile(name, profiles[name], path)
  end
  if profiles.default ~= nil then
    return check_profile("default", profiles.default, path)
  end
  return {}
end

--- Returns the settings from flags (the command line), the environment and the profile.
-- The result also carries profile (its name) and password_env (SYNO_PASSWORD).
function M.resolve(flags, getenv)
  flags = flags or {}
  getenv = getenv or os.getenv
  local function env(name)
    local value = getenv(name)
    if value == "" then
      return nil
    end
    return value
  end

  local profile_name = flags.profile or env("SYNO_PROFILE")
  local profile = M.load_profile(profile_name)
  local result = { profile = profile_name }
  for _, setting in ipairs(settings) do
    local value = flags[setting.name]
    if value == nil and setting.env then
      local text = env(setting.env)
      if text ~= nil then
        if setting.type == "boolean" then
          value = env_boolean(setting.env, text)
        elseif setting.type == "number" then
          value = env_number(setting.env, text)
        else
          value = text
        end
      end
    end
    if value == nil then
      value = profile[setting.name]
    end
    result[setting.name] = value
  end
  if result.dialect and not dialects[result.dialect] then
    local source = flags.dialect and "--dialect" or "SYNO_DIALECT"
    usage(string.format("invalid %s %q: use auto, document or container-manager", source, result.dialect))
  end
  -- SYNO_PASSWORD counts only when no password file was named by a flag.
  if not flags.password_file then
    result.password_env = getenv("SYNO_PASSWORD")
    if result.password_env and env("SYNO_PASSWORD_FILE") == nil then
      result.password_file = nil
    end
  end
  result.verbose = flags.verbose
  result.quiet = flags.quiet
  return result
end

return M
