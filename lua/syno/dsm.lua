--- DSM Web API protocol: discovery, login, the request envelope, error
-- mapping, re-login after a lost session, and logout.
--
-- Secrets stay out of URLs: the password travels only in a POST body, the
-- SID goes as the "id" cookie on GET and as the _sid form field on POST, and
-- the synotoken as the X-SYNO-TOKEN header. None of them is ever logged.

local core = require "syno.core"
local cjson = require "cjson.safe"
local errors = require "syno.errors"

local M = {}

local Session = {}
Session.__index = Session
Session.__name = "syno.Session"

M.Session = Session

-- The highest SYNO.API.Auth version this client speaks.
local MAX_AUTH_VERSION = 7

local function log(level, text)
  core.message(level, text)
end

--- Encodes fields as an application/x-www-form-urlencoded string, keeping the
-- order of names. Every byte outside A-Za-z0-9-._~ is percent-encoded, so a
-- space is %20 and "+" is %2B.
M.form_encode = core.form_encode

--- Checks a NAS URL and returns it without a trailing slash.
function M.normalize_url(url)
  if type(url) ~= "string" or url == "" then
    errors.raise { kind = "usage", message = "no NAS URL: pass --url https://nas.local:5001, "
      .. "set SYNO_URL, or choose a profile with --profile NAME" }
  end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then
    errors.raise { kind = "usage", message = string.format(
      "invalid NAS URL %q: missing scheme; use https://%s (or http:// for port 5000)", url, url) }
  end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    errors.raise { kind = "usage", message = string.format(
      "invalid NAS URL %q: the scheme must be http or https", url) }
  end
  local host, path = rest:match("^([^/?#]+)(.*)$")
  if not host then
    errors.raise { kind = "usage", message = string.format("invalid NAS URL %q: missing host", url) }
  end
  if host:find("@", 1, true) then
    -- The URL is not repeated: it contains a password.
    errors.raise { kind = "usage", message = "invalid NAS URL: credentials do not belong in the "
      .. "URL; give the account with --user and the password with --password-file" }
  end
  local port = host:match(":(%d+)$")
  if port and (tonumber(port) < 1 or tonumber(port) > 65535) then
    errors.raise { kind = "usage", message = string.format(
      "invalid NAS URL %q: port %s is outside 1 to 65535", url, port) }
  elseif not port and host:find(":[^%]]*$") and not host:match("^%[.*%]$") then
    errors.raise { kind = "usage", message = string.format(
      "invalid NAS URL %q: the port must be a number", url) }
  end
  path = path:gsub("/+$", "")
  if path ~= "" then
    errors.raise { kind = "usage", message = string.format(
      "invalid NAS URL %q: give only scheme, host and port, such as %s://%s", url, scheme, host) }
  end
  return scheme .. "://" .. host
end

--- Creates a session. Nothing is sent until the first call or login.
-- options: url, user, password (string) or password_source (function
-- returning the password), otp, otp_source (function returning a two-step
-- code when the NAS requires one), cacert, insecure, timeout (s), dry_run,
-- dialect (an image API dialect name, or nil to detect it), device (the
-- device token store, see Session:login).
function M.new(options)
  local self = {
    url = M.normalize_url(options.url),
    user = options.user,
    otp = options.otp,
    dry_run = options.dry_run and true or false,
    dialect = options.dialect,
    device = options.device,
    apis = nil,         -- SYNO.API.Info result, after discovery
    sid = nil,
    synotoken = nil,
    closed = false,
    requests = 0,
  }
  if type(self.user) ~= "string" or self.user == "" then
    errors.raise { kind = "usage", message = "no DSM account: pass --user NAME, set SYNO_USER, "
      .. "or set user in the profile" }
  end
  -- The password is kept in a closure, not a field, so printing the session
  -- or dumping its fields in the REPL cannot show it.
  self.otp_source = options.otp_source
  local password = options.password
  local password_source = options.password_source
  self.password = function()
    if password == nil and password_source then
      password = password_source()
    end
    return password
  end
  self.cacert = options.cacert
  if options.cacert then
    local file, message = io.open(options.cacert, "r")
    if not file then
      errors.raise { kind = "usage", message = string.format("cannot read --cacert file: %s", message) }
    end
    file:close()
  end
  local host = self.url:match("^http://%[?([^%]/]-)%]?:?%d*$")
  if host and not (host == "localhost" or host:match("^127%.") or host == "::1") then
    log("warning", string.format("%s uses http://, so the password crosses the network "
      .. "unencrypted; use https:// (DSM's default HTTPS port is 5001)", self.url))
  end
  if options.insecure and self.url:match("^https:") then
    log("warning", string.format("--insecure: the TLS certificate of %s is not verified", self.url))
  end
  self.pinned_pubkey = options.pinned_pubkey
  if options.pinned_pubkey and not (options.pinned_pubkey:match("^sha256//[%w+/=]+$")
      or options.pinned_pubkey:match("^sha256//[%w+/=]+;[%w+/=;]*$")) then
    errors.raise { kind = "usage", message = string.format("invalid --pinned-pubkey %q: give "
      .. "sha256// and the base64 SHA-256 of the NAS's public key, as curl spells it "
      .. "(the README shows the openssl command that prints it)", options.pinned_pubkey) }
  end
  self.http = core.http_client {
    cacert = options.cacert,
    insecure = options.insecure,
    pinned_pubkey = options.pinned_pubkey,
    timeout = options.timeout or 60,
    connect_timeout = math.min(options.timeout or 60, 15),
    user_agent = "synosh/" .. core.version,
  }
  -- The metatable comes last: Lua runs finalizers in reverse order of
  -- setting them, so at exit the session logs out before its HTTP client closes.
  return setmetatable(self, Session)
end

function Session:__tostring()
  local state = self.closed and "closed" or (self.sid and "logged in" or "not logged in")
  return string.format("DSM session %s@%s (%s)", self.user, self.url, state)
end

-- Fields whose values are secrets; an excerpt of a body never shows them.
local secret_fields = { "sid", "synotoken", "did", "device_id", "passwd", "password", "_sid" }

-- Quotes the start of a body for an error message: printable, at most 80
-- bytes, with the values of secret fields replaced (even when cut short).
local function excerpt(body)
  local text = body:sub(1, 80)
  for _, field in ipairs(secret_fields) do
    text = text:gsub('("' .. field .. '"%s*:%s*")[^"]*"?', '%1<hidden>"')
  end
  text = text:gsub("[%c]", " "):gsub("%s+", " ")
  if #body > 80 then
    text = text .. "..."
  end
  return string.format("%q", text)
end

-- libcurl's code for a CA file it cannot use (CURLE_SSL_CACERT_BADFILE).
local CURLE_SSL_CACERT_BADFILE = 77
-- libcurl's code for a public key that differs from the pin (CURLE_SSL_PINNEDPUBKEYNOTMATCH).
local CURLE_SSL_PINNEDPUBKEYNOTMATCH = 90
-- libcurl's codes for a connection that closed after it was made: an empty
-- reply (CURLE_GOT_NOTHING), a failed send (CURLE_SEND_ERROR) and a failed
-- receive (CURLE_RECV_ERROR, such as a reset).
local dropped_codes = { [52] = true, [55] = true, [56] = true }

local function transport_error(self, kind, detail, where, context, curl_code)
  local message
  if curl_code == CURLE_SSL_PINNEDPUBKEYNOTMATCH then
    kind = "tls"
    message = string.format("TLS connection to %s rejected: the NAS's public key does not match "
      .. "--pinned-pubkey; if the NAS got a new certificate, check it and pin its new key", self.url)
  elseif kind == "tls" and curl_code == CURLE_SSL_CACERT_BADFILE then
    kind = "usage"
    message = string.format("invalid --cacert file %s: %s; give a PEM file with the NAS's "
      .. "certificate or the CA that signed it", tostring(self.cacert), detail)
  elseif kind == "tls" and detail:find("wrong version number", 1, true) then
    message = string.format("TLS connection to %s failed: %s; the port seems to serve plain "
      .. "HTTP, so use http:// or the HTTPS port (DSM's default is 5001)", self.url, detail)
  elseif kind == "tls" then
    message = string.format("TLS connection to %s failed: %s; if the NAS uses a self-signed "
      .. "certificate, pass --cacert FILE with its certificate or --pinned-pubkey sha256//... with "
      .. "its key (or --insecure to skip verification)",
      self.url, detail)
  elseif kind == "timeout" then
    message = string.format("%s at %s timed out: %s; the NAS may be busy, or raise --timeout",
      where, self.url, detail)
  elseif kind == "interrupted" then
    message = string.format("%s at %s interrupted", where, self.url)
  elseif kind == "usage" then
    message = string.format("invalid NAS URL %s: %s", self.url, detail)
  elseif dropped_codes[curl_code] then
    -- The NAS was reached, so "check --url" would mislead.
    kind = "network"
    message = string.format("the connection to %s closed during %s: %s; the NAS or a proxy "
      .. "dropped it, so check that DSM is running and try again", self.url, where, detail)
  else
    kind = "network"
    local hint = "check --url and that DSM is running"
    if self.url:match("^http:") then
      hint = hint .. " (if the port serves HTTPS, such as DSM's 5001, use https://)"
    end
    message = string.format("cannot reach %s (%s): %s; %s", self.url, where, detail, hint)
  end
  errors.raise { kind = kind, message = message, api = context.api, method = context.method }
end

-- The parameters that every request carries first, read from the request.
local envelope_names = { "api", "version", "method" }

--- Sends one request and returns the decoded envelope's data. Raises on
-- transport failures, non-JSON responses and success=false.
-- request: api, method, version, path, http ("GET" or "POST"), names (ordered
-- parameter names), values, during_login.
function Session:send(request)
  local url = self.url .. "/webapi/" .. request.path
  local params = core.form_encode(envelope_names, request)
  if request.names then
    local extra = core.form_encode(request.names, request.values)
    if extra ~= "" then
      params = params .. "&" .. extra
    end
  end

  local headers, body
  if request.http == "POST" then
    if self.sid then
      params = params .. "&_sid=" .. core.escape(self.sid)
    end
    body = params
    headers = { ["X-SYNO-TOKEN"] = self.synotoken,
                ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" }
  else
    url = url .. "?" .. params
    headers = { ["X-SYNO-TOKEN"] = self.synotoken, Cookie = self.sid and "id=" .. self.sid }
  end

  local where = request.api .. " " .. request.method
  if core.message_enabled("debug") then
    log("debug", string.format("%s %s/webapi/%s (%s)", request.http, self.url, request.path, where))
  end
  self.requests = self.requests + 1
  -- A write goes on a new connection, so libcurl never sends it twice by
  -- itself (see http_request); after a lost response the caller reads back.
  local fresh = request.http == "POST" and request.api ~= "SYNO.API.Auth"
  local status, text, content_type, curl_code = self.http:request(request.http, url, body, headers, fresh)
  if not status then
    transport_error(self, text, content_type, where, request, curl_code)
  end
  return self:decode(status, text, content_type, request, where)
end

-- Raises the protocol error for a response that is not a DSM envelope. It is
-- a function of its own, not a closure in decode, because building the
-- closure and the URL for every response cost each call about 3% more
-- instructions.
local function protocol_error(self, status, body, content_type, request, where, problem)
  errors.raise {
    kind = "protocol", http_status = status, api = request.api, method = request.method,
    message = string.format("%s: %s returned HTTP %d (%s) %s, starting %s; check that --url "
      .. "points at DSM itself (port 5000 or 5001), not at a proxy or login portal",
      where, self.url .. "/webapi/" .. request.path, status,
      content_type ~= "" and content_type or "no content type", problem, excerpt(body)),
  }
end

function Session:decode(status, body, content_type, request, where)
  if status >= 400 then
    protocol_error(self, status, body, content_type, request, where, "with an error status")
  end
  local envelope = cjson.decode(body)
  if type(envelope) ~= "table" or type(envelope.success) ~= "boolean" then
    if content_type:find("json", 1, true) or body:match("^%s*[{%[]") then
      protocol_error(self, status, body, content_type, request, where,
        "with invalid or truncated JSON")
    end
    protocol_error(self, status, body, content_type, request, where, "instead of JSON")
  end
  if envelope.success then
    local data = envelope.data
    if data == nil or data == cjson.null then
      return {}
    end
    if type(data) ~= "table" then
      protocol_error(self, status, body, content_type, request, where, string.format(
        "with success=true but data that is %s, not an object", errors.json_type(data)))
    end
    return data
  end

  local failure = type(envelope.error) == "table" and envelope.error or {}
  local code = math.tointeger(failure.code)
  if not code then
    protocol_error(self, status, body, content_type, request, where,
      "with success=false but no error code")
  end
  local kind = errors.kind_of(code, request.during_login)
  local meaning = errors.describe(code, request.during_login)
  return nil, errors.new {
    kind = kind, code = code, http_status = status, api = request.api, method = request.method,
    errors = failure.errors,
    message = string.format("%s failed: DSM error %d (%s)", where, code, meaning),
  }
end

-- Checks the SYNO.API.Info entry of each API in names: when present, it must
-- be an object whose path is a relative path under /webapi/, because the path
-- goes into every request URL of that API.
local function check_api_entries(self, data, names)
  for _, api in ipairs(names) do
    local entry = data[api]
    local problem
    if entry == nil then
      -- The NAS does not offer this API; the caller decides what that means.
    elseif type(entry) ~= "table" then
      problem = "the entry is " .. errors.json_type(entry) .. ", not an object"
    elseif type(entry.path) ~= "string" then
      problem = "its path is " .. errors.json_type(entry.path) .. ", not a string"
    elseif not entry.path:find("^[%w._/-]+$") or entry.path:find("..", 1, true)
        or entry.path:sub(1, 1) == "/" then
      problem = "its path " .. excerpt(entry.path) .. " is not a relative path under /webapi/"
    end
    if problem then
      errors.raise { kind = "protocol", api = "SYNO.API.Info", method = "query", message = string.format(
        "SYNO.API.Info on %s returned an invalid entry for %s: %s; check that --url points at "
        .. "DSM itself", self.url, api, problem) }
    end
  end
end

--- Queries SYNO.API.Info for the APIs synosh uses, once per session.
function Session:discover()
  if self.apis then
    return self.apis
  end
  local data, err = self:send {
    api = "SYNO.API.Info", method = "query", version = 1, path = "query.cgi", http = "GET",
    names = { "query" }, values = { query = table.concat(M.wanted_apis, ",") },
  }
  if not data then
    error(err, 0)
  end
  check_api_entries(self, data, M.wanted_apis)
  self.apis = data
  return data
end

-- The APIs asked for at discovery: login and those of every image dialect.
M.wanted_apis = {
  "SYNO.API.Auth", "SYNO.Docker.Image", "SYNO.Docker.Image.Search",
  "SYNO.Docker.Image.Registry", "SYNO.Docker.Registry", "SYNO.Docker.Container",
}

--- Returns path and version to use for api: the highest version in the range
-- that SYNO.API.Info reports and that synosh speaks (at most max_version).
function Session:api_version(api, min_version, max_version)
  local info = self:discover()[api]
  if type(info) ~= "table" then
    return nil
  end
  local high = math.min(math.tointeger(info.maxVersion) or 1, max_version)
  local low = math.max(math.tointeger(info.minVersion) or 1, min_version)
  if high < low then
    errors.raise { kind = "api", api = api, message = string.format(
      "%s on %s offers versions %d to %d, but synosh speaks %d to %d", api, self.url,
      math.tointeger(info.minVersion) or 1, math.tointeger(info.maxVersion) or 1, min_version, max_version) }
  end
  return info.path, high
end

local function login_hint(code, self, device_token_sent)
  if code == 403 and device_token_sent then
    return string.format("the device token remembered in %s was not accepted (it may have been "
      .. "revoked in DSM); run once with --otp CODE --remember-device NAME to store a new one",
      tostring(self.device.path))
  elseif code == 403 and self.otp_used then
    return "the session was lost and the two-step code given earlier was already used; "
      .. "run again with a new code"
  elseif code == 400 then
    return string.format("check the user name %q and its password", tostring(self.user))
  elseif code == 403 then
    return "pass --otp CODE with a current code from the authenticator app; for scheduled runs, "
      .. "add --remember-device NAME once so that later logins need no code"
  elseif code == 404 then
    return "the code was wrong or already used; wait for the next code and pass it with --otp"
  elseif code == 407 then
    return "the NAS blocks this IP address; unblock it in DSM (Control Panel > Security > "
      .. "Protection) before trying again"
  elseif code == 401 or code == 411 then
    return "an administrator must enable or unlock the account"
  elseif code >= 408 and code <= 410 then
    return "sign in to DSM in a browser to change the password"
  end
  return "check the account's permissions in DSM"
end

-- Reads the remembered device token; a store that fails only warns.
local function load_device_token(self)
  if not (self.device and self.device.load) then
    return nil
  end
  local ok, token, name = pcall(self.device.load)
  if not ok then
    log("warning", tostring(token))
    return nil
  end
  return token, name
end

-- Stores the device token that an OTP login with enable_device_token returned.
local function save_device_token(self, data, token_sent)
  local token = data.device_id or data.did
  if type(token) == "string" and token ~= "" then
    local ok, message = pcall(self.device.save, token, self.device.name)
    if ok then
      log("info", string.format("remembered this device as %q for %s at %s; later logins need no "
        .. "two-step code", self.device.name, self.user, self.url))
    else
      log("warning", string.format("cannot remember this device: %s", tostring(message)))
    end
  elseif not token_sent and not self.device_warned then
    self.device_warned = true
    log("warning", string.format("--remember-device: %s returned no device token, because it returns "
      .. "one only after a login with a two-step code (--otp)", self.url))
  end
end

--- Logs in with SYNO.API.Auth; keeps the SID and synotoken.
-- With a device store (options.device of M.new: name, path, load, save), the
-- login sends a remembered device token as device_id. When the store has a
-- name (--remember-device), the login also requests a new token and saves it.
function Session:login()
  if self.closed then
    errors.raise { kind = "usage", message = string.format(
      "the session of %s at %s is closed; open a new one with syno.connect", self.user, self.url) }
  end
  local path, version = self:api_version("SYNO.API.Auth", 1, MAX_AUTH_VERSION)
  if not path then
    errors.raise { kind = "protocol", message = string.format(
      "%s does not offer SYNO.API.Auth; check that --url points at DSM", self.url) }
  end
  local password = self.password()
  if password == nil or password == "" then
    errors.raise { kind = "usage", message = string.format("no password for %s on %s: pass "
      .. "--password-file FILE, or set SYNO_PASSWORD_FILE or SYNO_PASSWORD", self.user, self.url) }
  end
  self.sid, self.synotoken = nil, nil
  local device_token, device_name = load_device_token(self)
  local remember = self.device and self.device.name
  local request = {
    api = "SYNO.API.Auth", method = "login", version = version, path = path, http = "POST",
    during_login = true,
    names = { "account", "passwd", "format", "enable_syno_token", "otp_code",
              "enable_device_token", "device_name", "device_id" },
    values = { account = self.user, passwd = password, format = "sid",
               enable_syno_token = "yes", otp_code = self.otp,
               enable_device_token = remember and "yes" or nil,
               device_name = remember or (device_token and device_name) or nil,
               device_id = device_token },
  }
  local data, err = self:send(request)
  -- On a terminal, a 403 (code required) prompts for the code and logs in once more.
  if not data and err.code == 403 and self.otp_source then
    local code = self.otp_source()
    if code and code ~= "" then
      request.values.otp_code = code
      self.otp = code
      data, err = self:send(request)
    end
  end
  if not data then
    err.message = string.format("login to %s as %s failed: %s; %s", self.url, self.user,
      errors.describe(err.code, true), login_hint(err.code, self, device_token ~= nil))
    error(err, 0)
  end
  if type(data.sid) ~= "string" or data.sid == "" then
    errors.raise { kind = "protocol", api = "SYNO.API.Auth", method = "login",
      message = string.format("login to %s returned no session id", self.url) }
  end
  self.sid = data.sid
  self.synotoken = type(data.synotoken) == "string" and data.synotoken or nil
  if remember then
    save_device_token(self, data, device_token ~= nil)
  end
  -- A one-time code cannot be used twice, so a re-login must not resend it.
  if self.otp then
    self.otp, self.otp_used = nil, true
  end
  return true
end

--- Sends a DSM request and returns its data. Logs in first when needed; after
-- a lost session (106, 107, 119) logs in once more and retries once.
-- request: api, method, version, path, http, names, values.
-- How often a read is sent again after a transient transport failure, and
-- the first wait in seconds; each later wait doubles, with jitter.
M.read_retries = 2
M.retry_delay = 0.25

-- Transport failures worth another try for a read: the connection failed or
-- dropped. A timeout is not retried, so --timeout stays the limit.
local function transient(err)
  return type(err) == "table" and err.kind == "network"
end

--- Sends request; a read (GET) that fails on the way is sent again, up to
-- M.read_retries times, after a wait with jitter. A write is never sent twice
-- here: its caller reads the state back instead.
function Session:send_retrying(request)
  local attempt = 0
  while true do
    local ok, data, err = pcall(self.send, self, request)
    if ok then
      return data, err
    end
    local failure = data
    attempt = attempt + 1
    if request.http ~= "GET" or attempt > M.read_retries or not transient(failure) or core.interrupted() then
      error(failure, 0)
    end
    local wait = M.retry_delay * 2 ^ (attempt - 1) * (0.5 + math.random())
    log("debug", string.format("%s; trying again in %.2f s (retry %d of %d)", tostring(failure.message),
      wait, attempt, M.read_retries))
    if not core.sleep(wait) then
      error(failure, 0)
    end
  end
end

function Session:request(request)
  if not self.sid then
    self:login()
  end
  local data, err = self:send_retrying(request)
  if data then
    return data
  end
  if errors.session_lost[err.code] then
    log("debug", string.format("session lost (DSM error %d); logging in again", err.code))
    self:login()
    data, err = self:send_retrying(request)
    if data then
      return data
    end
    if errors.session_lost[err.code] then
      err.kind = "session"
      err.message = err.message .. "; the session was lost again right after a new login"
    end
  end
  error(err, 0)
end

--- Returns the SYNO.API.Info entry of api, asking the NAS when discovery did
-- not include it; nil when the NAS does not offer api.
function Session:api_info(api)
  local apis = self:discover()
  if apis[api] == nil and not self.asked_apis then
    self.asked_apis = {}
  end
  if apis[api] == nil and not self.asked_apis[api] then
    self.asked_apis[api] = true
    local data, err = self:send {
      api = "SYNO.API.Info", method = "query", version = 1, path = "query.cgi", http = "GET",
      names = { "query" }, values = { query = api },
    }
    if not data then
      error(err, 0)
    end
    check_api_entries(self, data, { api })
    apis[api] = data[api]
  end
  return apis[api]
end

--- Turns the integral floats of record's fields into integers and returns
-- record. lua-cjson decodes every JSON number as a float, and sizes, times and
-- counts read better as integers (41, not 41.0).
function M.integers(record, fields)
  if type(record) == "table" then
    for _, field in ipairs(fields) do
      local value = record[field]
      if math.type(value) == "float" then
        record[field] = math.tointeger(value) or value
      end
    end
  end
  return record
end

--- Converts a Lua value to its form value: booleans as true/false, integral
-- numbers without a decimal point, tables as JSON text, nil as nil (not sent).
-- APIs whose SYNO.API.Info entry has requestFormat JSON take M.json_literal instead.
function M.encode_value(value)
  local kind = type(value)
  if kind == "nil" then
    return nil
  elseif kind == "boolean" then
    return value and "true" or "false"
  elseif kind == "number" then
    return math.tointeger(value) and string.format("%d", value) or tostring(value)
  elseif kind == "table" then
    return cjson.encode(value)
  end
  return tostring(value)
end

local json_escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
  ["\r"] = "\\r", ["\t"] = "\\t",
}

local function json_string(text)
  return '"' .. text:gsub('[%c"\\]', function(char)
    return json_escapes[char] or string.format("\\u%04x", char:byte())
  end) .. '"'
end

local function literal_error(message)
  errors.raise { kind = "usage", message = "cannot send value as JSON: " .. message }
end

--- Converts a Lua value to a JSON literal, the form value of an API whose
-- requestFormat is JSON. Strings are quoted ("nginx"), numbers and booleans
-- bare. A sequence becomes an array, a table with string keys an object with
-- sorted keys, and an empty table an empty array. nil stays nil (not sent).
-- Unlike lua-cjson, "/" stays unescaped and integers keep every digit.
function M.json_literal(value)
  local kind = type(value)
  if kind == "nil" then
    return nil
  elseif kind == "string" then
    return json_string(value)
  elseif kind == "boolean" then
    return value and "true" or "false"
  elseif kind == "number" then
    local integer = math.tointeger(value)
    if integer then
      return string.format("%d", integer)
    elseif value ~= value or value == math.huge or value == -math.huge then
      literal_error(tostring(value) .. " is not a JSON number")
    end
    -- The shortest of these forms that reads back as the same number.
    local text = string.format("%.15g", value)
    if tonumber(text) ~= value then
      text = string.format("%.17g", value)
    end
    return text
  elseif kind ~= "table" then
    literal_error("a " .. kind .. " has no JSON form")
  end
  local count = #value
  local keys = {}
  for key in pairs(value) do
    if math.type(key) == "integer" and key >= 1 and key <= count then
      -- an array index
    elseif type(key) == "string" and count == 0 then
      keys[#keys + 1] = key
    else
      literal_error("a table must be a sequence or have only string keys")
    end
  end
  local parts = {}
  if #keys == 0 then
    for index = 1, count do
      parts[index] = M.json_literal(value[index])
    end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  table.sort(keys)
  for index, key in ipairs(keys) do
    parts[index] = json_string(key) .. ":" .. M.json_literal(value[key])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

--- Calls any DSM API method and returns its decoded data.
-- params is a table of name = value, encoded as JSON literals when Info
-- reports requestFormat JSON for api, else as plain values (booleans as
-- true/false, tables as JSON);
-- options.http is "GET" (default) or "POST". Under dry run a POST is not sent.
function Session:call(api, method, version, params, options)
  if type(api) ~= "string" or type(method) ~= "string" then
    errors.raise { kind = "usage", message = "call(api, method, version, params): api and method must be strings" }
  end
  version = math.tointeger(version)
  if not version then
    errors.raise { kind = "usage", message = string.format("call %s %s: version must be an integer", api, method) }
  end
  local http = options and options.http or "GET"
  if http ~= "GET" and http ~= "POST" then
    errors.raise { kind = "usage", message = string.format("call %s %s: http must be \"GET\" or \"POST\", got %q",
      api, method, tostring(http)) }
  end
  if http == "POST" and self.dry_run then
    log("info", string.format("dry run: would call %s %s", api, method))
    return {}
  end
  local info = self:api_info(api)
  if type(info) ~= "table" then
    errors.raise { kind = "api", api = api, method = method, code = 102,
      message = string.format("%s does not offer %s (DSM error 102: API does not exist)", self.url, api) }
  end
  local encode = info.requestFormat == "JSON" and M.json_literal or M.encode_value
  local names, values = {}, {}
  for name, value in pairs(params or {}) do
    names[#names + 1] = name
    values[name] = encode(value)
  end
  table.sort(names)
  return self:request {
    api = api, method = method, version = version, path = info.path, http = http,
    names = names, values = values,
  }
end

--- Logs out (when logged in) and releases the connection. Safe to call twice.
function Session:close()
  if self.closed then
    return true
  end
  if core.interrupted() then
    -- No request can start now; the host logs out once the signal is handled.
    return nil, errors.new { kind = "interrupted", message = "logout postponed by an interrupt" }
  end
  self.closed = true
  local ok, err = true, nil
  if self.sid then
    local auth = self.apis["SYNO.API.Auth"]
    local version = math.min(math.tointeger(auth.maxVersion) or 1, MAX_AUTH_VERSION)
    ok, err = pcall(self.send, self, {
      api = "SYNO.API.Auth", method = "logout", version = version, path = auth.path, http = "POST",
    })
    self.sid, self.synotoken = nil, nil
  end
  self.http:close()
  if not ok then
    return nil, err
  end
  return true
end

Session.__close = Session.close
Session.__gc = function(self)
  pcall(Session.close, self)
end

return M
