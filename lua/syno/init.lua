--- The syno module: sessions, the generic DSM call, dry run and logging.
--
--   local syno = require "syno"
--   local nas = syno.connect{url = ..., user = ..., password_file = ...}
--   nas.image.list()
--   nas:close()
--
-- syno.image (require "syno.image") is bound to the default session, which is
-- built from the command-line options, the environment and the profile, and
-- logs in on its first call.

local core = require "syno.core"
local config = require "syno.config"
local dsm = require "syno.dsm"
local errors = require "syno.errors"
local operations = require "syno.operations"

local syno = {}

syno.errors = errors
syno.version = core.version

local settings = config.resolve(package.loaded["syno.options"] or {})

--- true under --dry-run (or SYNO_DRY_RUN=1): writes are printed, not sent.
syno.dry_run = settings.dry_run or false

syno.log = {}
function syno.log.info(text)
  core.message("info", tostring(text))
end
function syno.log.warn(text)
  core.message("warning", tostring(text))
end
function syno.log.error(text)
  core.message("error", tostring(text))
end

local function usage(message)
  errors.raise { kind = "usage", message = message }
end

--- Reads the first line of a password file; warns when others can read it.
local function read_password_file(path)
  local file, message = io.open(path, "r")
  if not file then
    usage(string.format("cannot read password file: %s", message))
  end
  local line, read_error = file:read("l")
  file:close()
  if read_error then
    usage(string.format("cannot read password file %s: %s", path, read_error))
  end
  if line then
    line = line:gsub("\r$", "")
  end
  if not line or line == "" then
    usage(string.format("password file %s is empty; put the password on its first line", path))
  end
  local mode = core.file_mode(path)
  if mode and mode & 0x3f ~= 0 then
    core.message("warning", string.format("password file %s is readable by other users "
      .. "(mode %04o); run: chmod 600 %s", path, mode, path))
  end
  return line
end

-- Returns a function that finds the password when the login needs it.
local function password_source(options)
  return function()
    if options.password_file then
      return read_password_file(options.password_file)
    end
    if options.password_env and options.password_env ~= "" then
      return options.password_env
    end
    if core.isatty("stdin") then
      local password = core.getpass(string.format("Password for %s at %s: ", options.user,
        dsm.normalize_url(options.url)))
      return password
    end
    return nil
  end
end

-- Returns a function that prompts for a two-step code on the terminal, or nil
-- when there is no terminal (a scheduled run must pass --otp).
local function otp_source(options)
  if not core.isatty("stdin") then
    return nil
  end
  return function()
    return core.getpass(string.format("Two-step verification code for %s: ", options.user))
  end
end

-- Every open session, so the host can log them out at exit.
local open_sessions = setmetatable({}, { __mode = "k" })

local Connection = {}
Connection.__index = Connection
Connection.__name = "syno.Connection"

local function new_connection(options)
  local session = dsm.new {
    url = options.url, user = options.user, otp = options.otp, cacert = options.cacert,
    insecure = options.insecure, timeout = options.timeout, dry_run = options.dry_run,
    password = options.password, password_source = password_source(options),
    otp_source = otp_source(options),
  }
  open_sessions[session] = true
  local connection = setmetatable({ session = session }, Connection)
  connection.image = operations.image_module(function()
    return session
  end)
  return connection
end

function Connection:close()
  local ok, err = self.session:close()
  if self.session.closed then
    open_sessions[self.session] = nil
  end
  if not ok then
    return nil, err
  end
  return true
end
Connection.__close = Connection.close

--- nas:call(api, method, version, params, {http = "GET"|"POST"}) --> data
function Connection:call(api, method, version, params, options)
  return self.session:call(api, method, version, params, options)
end

--- nas:info() --> {url, user, dialect, logged_in}
function Connection:info()
  local session = self.session
  return { url = session.url, user = session.user, dialect = session.dialect,
           logged_in = session.sid ~= nil, dry_run = session.dry_run }
end

function Connection:__tostring()
  return tostring(self.session)
end

-- The options of syno.connect and their types.
local connect_options = {
  url = "string", user = "string", password = "string", password_file = "string", otp = "string",
  cacert = "string", insecure = "boolean", timeout = "number", dry_run = "boolean",
}

--- Opens a session and logs in. Options not given come from the command line,
-- the environment and the profile, as for the default session.
function syno.connect(options)
  if options ~= nil and type(options) ~= "table" then
    usage("syno.connect: expected a table of options")
  end
  options = options or {}
  for key, value in pairs(options) do
    local expected = connect_options[key]
    if not expected then
      usage(string.format("syno.connect: unknown option %q", tostring(key)))
    end
    if type(value) ~= expected then
      usage(string.format("syno.connect: option %s must be a %s, got %s", key, expected, type(value)))
    end
  end
  if options.timeout and not (options.timeout > 0 and options.timeout <= 86400) then
    usage(string.format("syno.connect: timeout must be a number of seconds greater than 0 "
      .. "and at most 86400 (a day), got %s", tostring(options.timeout)))
  end
  local merged = {}
  for key, value in pairs(settings) do
    merged[key] = value
  end
  for key, value in pairs(options) do
    merged[key] = value
  end
  if options.password or options.password_file then
    merged.password_env = nil
  end
  if options.password then
    merged.password_file = nil
  end
  local connection = new_connection(merged)
  connection.session:login()
  return connection
end

local default_connection

--- Returns the default connection, creating it (without logging in) on first use.
function syno.default()
  if not default_connection then
    default_connection = new_connection(settings)
  end
  return default_connection
end

--- Returns facts about the default session: url, user, dialect, logged_in, dry_run.
function syno.session()
  return syno.default():info()
end

--- syno.call(api, method, version, params, {http = "GET"|"POST"}) --> data
-- Calls any DSM API on the default session.
function syno.call(api, method, version, params, options)
  return syno.default():call(api, method, version, params, options)
end

--- Logs out every open session; the host calls it at exit.
function syno._shutdown()
  local failures = {}
  for session in pairs(open_sessions) do
    local ok, err = session:close()
    if not ok then
      failures[#failures + 1] = tostring(err)
    end
    open_sessions[session] = nil
  end
  if #failures > 0 then
    error(table.concat(failures, "; "), 0)
  end
end

return syno
