--- Error objects and the DSM error code tables.
--
-- Every failure in synosh is raised as an error object: a table with the fields
--   kind         one of usage, auth, otp_required, permission, not_found,
--                session, network, tls, timeout, protocol, api, unsupported,
--                interrupted, locked, sandbox
--   code         the DSM error code, or nil
--   http_status  the HTTP status, or nil
--   api, method  the DSM API and method of the failed call, or nil
--   message      one readable line; tostring(err) returns it
-- The host maps an uncaught error's kind to the exit status (see synosh --help).

local M = {}

local Error = {}
Error.__index = Error
Error.__name = "syno.Error"
Error.__tostring = function(err)
  return err.message
end

M.Error = Error
-- The host looks the metatable up here to build "interrupted" errors in C.
debug.getregistry()["syno.Error"] = Error

--- Creates an error object from a table of fields (kind and message required).
function M.new(fields)
  assert(type(fields.kind) == "string" and type(fields.message) == "string",
    "an error needs a kind and a message")
  return setmetatable(fields, Error)
end

--- Raises an error object built from fields.
function M.raise(fields)
  error(M.new(fields), 0)
end

--- Returns true when value is an error object of this module.
function M.is(value)
  return getmetatable(value) == Error
end

--- Names the JSON type of a value decoded by lua-cjson, for messages about
-- malformed responses: "a number", "an array or object", "null".
function M.json_type(value)
  local kind = type(value)
  if kind == "table" then
    return "an array or object"
  elseif kind == "userdata" then
    return "null"
  end
  return "a " .. kind
end

--- Codes every DSM API shares.
M.common = {
  [100] = "unknown error",
  [101] = "missing api, method or version, or a bad required value",
  [102] = "API does not exist",
  [103] = "method does not exist",
  [104] = "version not supported",
  [105] = "session has no permission",
  [106] = "session timed out",
  [107] = "session interrupted by a duplicate login",
  [108] = "file upload failed",
  [109] = "network unstable or system busy",
  [110] = "network unstable or system busy",
  [111] = "network unstable or system busy",
  [114] = "a required parameter is missing or has the wrong type",
  [115] = "file upload not allowed",
  [116] = "not allowed on a demo site",
  [117] = "network unstable or system busy",
  [118] = "network unstable or system busy",
  [119] = "SID not found (invalid session)",
  [150] = "request IP differs from the login IP",
  [160] = "insufficient application privilege",
}

--- Codes of SYNO.API.Auth login.
M.login = {
  [400] = "no such account or incorrect password",
  [401] = "account disabled",
  [402] = "permission denied",
  [403] = "two-step verification code required",
  [404] = "two-step verification code rejected",
  [405] = "wrong application portal",
  [406] = "two-step verification is enforced for this account",
  [407] = "IP address blocked after too many failed logins",
  [408] = "password expired and cannot be changed",
  [409] = "password expired",
  [410] = "password must be changed",
  [411] = "account locked",
}

--- Codes of the SYNO.Docker.* APIs.
-- NOTE: the image API document lists no error codes. 1052 and 1053 are what
-- Container Manager returns for a search on a registry without a search API;
-- the others are the codes the bundled simulator returns, and a real NAS may
-- use others.
M.docker = {
  [1001] = "image not found",
  [1002] = "image is used by a container",
  [1003] = "registry already exists",
  [1004] = "registry not found",
  [1005] = "registry cannot be removed",
  [1006] = "task not found",
  [1052] = "registry request failed",
  [1053] = "registry offers no search",
}

M.session_lost = { [106] = true, [107] = true, [119] = true }

local kind_by_code = {
  [105] = "permission", [160] = "permission", [402] = "auth",
  [106] = "session", [107] = "session", [119] = "session", [150] = "session",
  [1001] = "not_found", [1004] = "not_found", [1006] = "not_found",
}

--- Returns the meaning of a DSM code, looking at the login table during login.
function M.describe(code, during_login)
  if during_login and M.login[code] then
    return M.login[code]
  end
  return M.common[code] or M.docker[code] or "undocumented error code"
end

--- Returns the error kind for a DSM code.
function M.kind_of(code, during_login)
  if during_login then
    if code == 403 then
      return "otp_required"
    elseif code >= 400 and code <= 411 then
      return "auth"
    end
  end
  return kind_by_code[code] or "api"
end

return M
