--- The syno module: sessions, the generic DSM call, dry run and logging.
--
--   local syno = require "syno"
--   local nas = syno.connect{url = ..., user = ..., password_file = ...}
--   nas.image.list()
--   nas:close()
--
-- syno.image (require "syno.image") and syno.container are bound to the
-- default session, which is built from the command-line options, the
-- environment and the profile, and logs in on its first call.

local core = require "syno.core"
local config = require "syno.config"
local device = require "syno.device"
local dsm = require "syno.dsm"
local errors = require "syno.errors"
local notify = require "syno.notify"
local functions = require "syno.functions"
local operations = require "syno.operations"

local syno = {}

syno.errors = errors
syno.version = core.version

local settings = config.resolve(package.loaded["syno.options"] or {})

--- true under --dry-run (or SYNO_DRY_RUN=1): writes are printed, not sent.
syno.dry_run = settings.dry_run or false

local host_options = package.loaded["syno.options"] or {}

--- Log lines on stderr. On a terminal they are plain; otherwise (cron mail,
-- journald, a log file) each starts with an ISO 8601 time and the level.
-- --quiet drops info lines.
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
--- Returns whether lines of level ("info", "warning", "error" or "debug") are printed.
function syno.log.enabled(level)
  return core.message_enabled(level == "warn" and "warning" or level)
end

--- true under --quiet: scripts print only warnings and errors.
syno.quiet = host_options.quiet or false

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
  local url = dsm.normalize_url(options.url)
  local session = dsm.new {
    url = url, user = options.user, otp = options.otp, cacert = options.cacert,
    pinned_pubkey = options.pinned_pubkey,
    insecure = options.insecure, timeout = options.timeout, dry_run = options.dry_run,
    password = options.password, password_source = password_source(options),
    otp_source = otp_source(options),
    dialect = options.dialect ~= "auto" and options.dialect or nil,
    device = type(options.user) == "string" and device.store(url, options.user, options.remember_device) or nil,
  }
  open_sessions[session] = true
  local connection = setmetatable({ session = session }, Connection)
  local function get_session()
    return session
  end
  connection.image = functions.image_module(get_session)
  connection.container = functions.container_module(get_session)
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

--- nas:info() --> {url, user, dialect, logged_in, dry_run}
-- dialect is nil until the session has asked SYNO.API.Info, unless --dialect chose one.
function Connection:info()
  local session = self.session
  return { url = session.url, user = session.user, dialect = operations.dialect_name(session),
           logged_in = session.sid ~= nil, dry_run = session.dry_run }
end

function Connection:__tostring()
  return tostring(self.session)
end

-- The options of syno.connect and their types.
local connect_options = {
  url = "string", user = "string", password = "string", password_file = "string", otp = "string",
  cacert = "string", insecure = "boolean", timeout = "number", dry_run = "boolean",
  pinned_pubkey = "string", dialect = "string", remember_device = "string",
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
  if options.dialect and not operations.choices[options.dialect] then
    usage(string.format("syno.connect: invalid dialect %q: use auto, document or container-manager",
      options.dialect))
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

--- syno.container.list() --> containers, total, on the default session.
syno.container = functions.container_module(function()
  return syno.default().session
end)

--- syno.call(api, method, version, params, {http = "GET"|"POST"}) --> data
-- Calls any DSM API on the default session.
function syno.call(api, method, version, params, options)
  return syno.default():call(api, method, version, params, options)
end

local held_locks = {}

--- syno.lock(path) --> lock
-- Takes an exclusive lock on the file at path for the rest of the run (or
-- until lock:release()). When another run holds it, raises an error of kind
-- "locked", which ends the run with exit status 5. --lock FILE calls this
-- before the script starts.
function syno.lock(path)
  if type(path) ~= "string" or path == "" then
    usage("syno.lock: expected the path of a lock file, such as \"/run/lock/synosh-cleanup.lock\"")
  end
  local lock, kind, detail = core.lock(path)
  if not lock then
    if kind == "busy" then
      errors.raise { kind = "locked", message = string.format(
        "another synosh run%s holds the lock %s; this run stops without doing anything",
        detail ~= "" and (" (pid " .. detail .. ", from the lock file)") or "", path) }
    end
    if detail:find("Is a directory", 1, true) then
      usage(detail .. "; give --lock the path of a file, such as " .. path:gsub("/+$", "") .. "/synosh.lock")
    end
    usage(detail .. "; give --lock a file in a directory this user can write")
  end
  held_locks[#held_locks + 1] = lock
  return lock
end

--- syno.notify(report, {command = CMD}) --> true
-- Hands a report (from syno.policy) to the notification: with --notify-command,
-- the command gets it as JSON on standard input when the run ends, together
-- with the exit status. With options.command, that command runs now.
function syno.notify(report, options)
  if type(report) ~= "table" then
    usage("syno.notify: expected a report from syno.policy, got " .. type(report))
  end
  notify.set_report(report)
  if options ~= nil and (type(options) ~= "table" or type(options.command) ~= "string") then
    usage("syno.notify: options must be {command = \"a shell command\"}")
  end
  if options then
    local payload = require("syno.report").data(report)
    return notify.run(options.command, require("syno.report").json(payload))
  end
  return true
end

--- Logs out every open session; the host calls it at exit.
function syno._shutdown()
  local failures, seen = {}, {}
  for session in pairs(open_sessions) do
    local ok, err = session:close()
    -- Two sessions to one NAS that is gone fail the same way; libcurl's
    -- detail (such as "after 11 ms") may still differ between them.
    local key = string.format("%s %s", type(err) == "table" and tostring(err.kind) or tostring(err),
      tostring(session.url))
    if not ok and not seen[key] then
      seen[key] = true
      failures[#failures + 1] = tostring(err)
    end
    open_sessions[session] = nil
  end
  if #failures > 0 then
    error(table.concat(failures, "; "), 0)
  end
end

return syno
