--- The dialect engine: chooses the image API dialect of a session and runs
-- the dialect's operations. syno.functions checks the arguments of the
-- syno.image and syno.container functions and calls M.run. This module
-- contains no argument checks, and the dialect tables contain the wire details.
--
-- A dialect table has:
--   name        the name scripts see in syno.session().dialect
--   signature   APIs of SYNO.API.Info, any of which selects the dialect
--   encoding    "plain" (form values) or "json" (JSON literals)
--   operations  wire rows: api, method, version (a number or {min, max}),
--               http, write, params (in wire order), result(data, values),
--               dry_run(values) (the data a write returns under dry run)
--   perform     optional functions(context, values, description) for the
--               operations that need more than one row
--   hints       optional hints for DSM error codes, by code

local core = require "syno.core"
local dsm = require "syno.dsm"
local errors = require "syno.errors"

local M = {}

M.dialects = {
  document = require "syno.dialect.document",
  ["container-manager"] = require "syno.dialect.container_manager",
}

-- The order in which detection tries the dialects.
M.detection_order = { "document", "container-manager" }

-- The values of --dialect, SYNO_DIALECT and the profile key dialect.
M.choices = { auto = true, document = true, ["container-manager"] = true }

-- The public name of each operation, for "not offered" messages.
M.public_names = {
  list = "image.list", get = "image.get", pull = "image.pull", delete = "image.delete",
  delete_many = "image.delete_many", search = "image.search",
  registry_list = "image.registry.list", registry_add = "image.registry.add",
  registry_use = "image.registry.use", registry_remove = "image.registry.remove",
  registry_tags = "image.registry.tags", pull_status = "image.pull_status", wait = "image.wait",
  upgrade = "image.upgrade", upgrade_status = "image.upgrade_status", prune = "image.prune",
  container_list = "syno.container.list",
}

-- Hints for the DSM codes a caller can act on, unless the dialect has its own.
local common_hints = {
  [105] = "Container Manager accepts only members of DSM's administrators group; "
    .. "add the account to it, or log in as an administrator",
  [1001] = "check the name with image.list()",
  [1003] = "a registry of that name exists already; choose another name",
}

--- Returns the name of the dialect that apis (a SYNO.API.Info result)
-- selects, or nil when none matches.
function M.detect(apis)
  for _, name in ipairs(M.detection_order) do
    for _, api in ipairs(M.dialects[name].signature) do
      if apis[api] ~= nil then
        return name
      end
    end
  end
  return nil
end

--- Returns the dialect table for session, detecting it from SYNO.API.Info once
-- unless --dialect chose one.
function M.dialect(session)
  if session.dialect then
    return M.dialects[session.dialect]
  end
  local apis = session:discover()
  if apis["SYNO.Docker.Image"] == nil then
    errors.raise { kind = "api", api = "SYNO.Docker.Image", code = 102, message = string.format(
      "Container Manager (Docker) is not installed or not running on %s; install or start it "
      .. "in DSM's Package Center", session.url) }
  end
  local name = M.detect(apis)
  if not name then
    errors.raise { kind = "api", api = "SYNO.Docker.Image", message = string.format(
      "%s offers SYNO.Docker.Image but neither SYNO.Docker.Image.Search, SYNO.Docker.Image.Registry "
      .. "nor SYNO.Docker.Registry, so its image API dialect is unknown; choose one with "
      .. "--dialect document or --dialect container-manager", session.url) }
  end
  session.dialect = name
  return M.dialects[name]
end

--- Returns the dialect name of session without any request: the chosen one,
-- the one that discovery selected, or nil before discovery.
function M.dialect_name(session)
  if session.dialect == nil and session.apis then
    session.dialect = M.detect(session.apis)
  end
  return session.dialect
end

local dialect_titles = {
  document = "the document dialect of the image API",
  ["container-manager"] = "the Container Manager dialect of the image API",
}

--- Returns an error of kind "unsupported": what (such as "image.prune") is
-- not offered by the NAS of session. hint is what to do instead.
function M.unsupported_error(session, what, hint)
  return errors.new { kind = "unsupported", message = string.format(
    "%s is not offered by this NAS: %s speaks %s%s", what, session.url,
    dialect_titles[session.dialect] or "an unknown dialect of the image API",
    hint and ("; " .. hint) or "") }
end

--- Raises the error of M.unsupported_error.
function M.unsupported(session, what, hint)
  error(M.unsupported_error(session, what, hint), 0)
end

-- Adds the target and a hint to an error object from a DSM call.
local function explain(err, description, dialect)
  if errors.is(err) and err.code and description then
    local hint = (dialect.hints or {})[err.code] or common_hints[err.code]
    err.message = string.format("cannot %s: %s%s", description, err.message, hint and ("; " .. hint) or "")
  end
  return err
end
M.explain = explain

-- Prints what a write row would do and returns what it returns under dry run.
local function dry_run_result(operation, values, description)
  core.message("info", "dry run: would "
    .. (description or string.format("call %s %s", operation.api, operation.method)))
  local data = operation.dry_run and operation.dry_run(values) or {}
  if operation.result then
    return operation.result(data, values)
  end
  return data
end

--- Sends the wire row name of the session's dialect with values (parameter
-- name = Lua value) and returns what the row's result makes of the data.
-- description names the target for messages, such as "delete nginx:1.25".
function M.invoke(session, name, values, description)
  local dialect = M.dialect(session)
  local operation = dialect.operations[name]
  if operation.write and session.dry_run then
    return dry_run_result(operation, values, description)
  end

  local version = operation.version
  local low, high = version, version
  if type(version) == "table" then
    low, high = version[1], version[2]
  end
  local path, chosen = session:api_version(operation.api, low, high)
  if not path then
    M.unsupported(session, string.format("%s (%s %s)", M.public_names[name] or name, operation.api,
      operation.method), string.format("SYNO.API.Info of %s does not list %s", session.url, operation.api))
  end
  local encode = dialect.encoding == "json" and dsm.json_literal or dsm.encode_value
  local encoded = {}
  for _, param in ipairs(operation.params) do
    encoded[param] = encode(values[param])
  end
  local ok, data = pcall(session.request, session, {
    api = operation.api, method = operation.method, version = chosen,
    path = path, http = operation.http, names = operation.params, values = encoded,
  })
  if not ok then
    error(explain(data, description, dialect), 0)
  end
  if operation.result then
    return operation.result(data, values)
  end
  return data
end

-- Builds the context a perform function receives besides its values: the
-- session, the dialect, and functions that call a wire row or raise "unsupported".
local function context(session, dialect)
  return {
    session = session,
    dialect = dialect,
    call = function(name, values, description)
      return M.invoke(session, name, values, description)
    end,
    unsupported = function(what, hint)
      M.unsupported(session, what, hint)
    end,
    unsupported_error = function(what, hint)
      return M.unsupported_error(session, what, hint)
    end,
  }
end

--- Tells whether the session's dialect has operation name (a perform
-- function or a wire row) or capability name (dialect.capabilities).
function M.offers(session, name)
  local dialect = M.dialect(session)
  return (dialect.perform and dialect.perform[name]) ~= nil or dialect.operations[name] ~= nil
    or (dialect.capabilities and dialect.capabilities[name]) == true
end

--- Raises kind "unsupported" unless the session's dialect has operation
-- name; what names the function in the message (default: the operation's).
function M.require(session, name, what)
  if not M.offers(session, name) then
    M.unsupported(session, what or M.public_names[name] or name,
      "only a NAS with Container Manager (DSM 7) or the Docker package (DSM 6) offers it")
  end
end

--- Runs operation name on session: the dialect's perform function of that
-- name, else its wire row of that name. Raises kind "unsupported" when the
-- dialect has neither.
function M.run(session, name, values, description)
  M.require(session, name)
  local dialect = M.dialect(session)
  local perform = dialect.perform and dialect.perform[name]
  if perform then
    return perform(context(session, dialect), values or {}, description)
  end
  return M.invoke(session, name, values or {}, description)
end

return M
