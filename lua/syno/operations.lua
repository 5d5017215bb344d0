--- The syno.image functions, built for one session. The functions check their
-- arguments, choose the session's dialect and run the dialect's row for the
-- operation; they hold no wire details themselves.

local core = require "syno.core"
local dsm = require "syno.dsm"
local errors = require "syno.errors"
local reference = require "syno.reference"

local M = {}

M.dialects = {
  document = require "syno.dialect.document",
}

-- Return values of the writes under dry run, as if they had succeeded.
local dry_run_results = { pull = "dry-run", delete = true, registry_add = true }

local function usage(message)
  errors.raise { kind = "usage", message = message }
end

--- Returns the dialect table for session, detecting it from SYNO.API.Info once.
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
  for name, dialect in pairs(M.dialects) do
    local matches = true
    for _, api in ipairs(dialect.signature) do
      matches = matches and apis[api] ~= nil
    end
    if matches then
      session.dialect = name
      return dialect
    end
  end
  -- NOTE: DSM 6 Docker and DSM 7 Container Manager speak another dialect
  -- (SYNO.Docker.Registry instead of SYNO.Docker.Image.Search/Registry).
  errors.raise { kind = "api", api = "SYNO.Docker.Image", message = string.format(
    "%s offers SYNO.Docker.Image without SYNO.Docker.Image.Search and SYNO.Docker.Image.Registry; "
    .. "this image API dialect is not supported yet", session.url) }
end

-- Hints for the DSM codes a caller can act on.
local hints = {
  [1001] = "check the name with image.list()",
  [1002] = "a container uses it; remove the container first, or pass {force = true}",
  [1003] = "a registry of that name exists already; choose another name",
}

-- Adds the target and a hint to an error object from a DSM call.
local function explain(err, description)
  if errors.is(err) and err.code and description then
    local hint = hints[err.code]
    err.message = string.format("cannot %s: %s%s", description, err.message, hint and ("; " .. hint) or "")
  end
  return err
end

--- Runs operation name with values (parameter name = Lua value) on session.
-- description names the target for messages, such as "delete nginx:1.25".
function M.invoke(session, name, values, description)
  local dialect = M.dialect(session)
  local operation = dialect.operations[name]
  if operation.write and session.dry_run then
    core.message("info", "dry run: would " .. description)
    return dry_run_results[name]
  end
  local info = session:api_info(operation.api)
  if type(info) ~= "table" then
    errors.raise { kind = "api", api = operation.api, method = operation.method, code = 102,
      message = string.format("%s does not offer %s, which %s needs", session.url, operation.api, name) }
  end
  local encoded = {}
  for _, param in ipairs(operation.params) do
    encoded[param] = dsm.encode_value(values[param])
  end
  local ok, data = pcall(session.request, session, {
    api = operation.api, method = operation.method, version = operation.version,
    path = info.path, http = operation.http, names = operation.params, values = encoded,
  })
  if not ok then
    error(explain(data, description), 0)
  end
  return operation.result(data)
end

-- lua-cjson decodes every JSON number as a float; sizes, times and counts
-- read better as integers (41, not 41.0).
local function integers(record, fields)
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

local image_number_fields = { "size", "created" }

-- Checks that options is nil or a table whose keys are all in allowed.
local function check_options(where, options, allowed)
  if options == nil then
    return {}
  end
  if type(options) ~= "table" then
    usage(string.format("%s: options must be a table, got %s", where, type(options)))
  end
  for key in pairs(options) do
    if not allowed[key] then
      local names = {}
      for name in pairs(allowed) do
        names[#names + 1] = name
      end
      table.sort(names)
      usage(string.format("%s: unknown option %q (options: %s)", where, tostring(key),
        table.concat(names, ", ")))
    end
  end
  return options
end

-- Shows a value in a message with its type when that matters: "5" (string) vs 5.
local function describe(value)
  if type(value) == "string" then
    return string.format("the string %q", value)
  end
  return tostring(value)
end

local function check_type(where, name, value, expected)
  if value ~= nil and type(value) ~= expected then
    usage(string.format("%s: %s must be a %s, got %s", where, name, expected, type(value)))
  end
end

local function is_dangling(repository, tag)
  return repository == "<none>" or tag == "<none>" or repository == "" or tag == ""
end

local latest_by_default = { default_tag = "latest" }

--- Resolves the image arguments of get, pull and delete: (reference),
-- (repository, tag) or (image record from list). Returns repository, tag and
-- the display name. A dangling image is named by its id.
local function target(where, first, second)
  if type(first) == "table" then
    local repository, tag, id = first.repository, first.tag, first.id
    if repository == nil and tag == nil and id == nil then
      usage(string.format("%s: the table has no repository, tag or id; pass a reference such as "
        .. "\"nginx:1.25\" or an image from image.list()", where))
    end
    if is_dangling(repository, tag) then
      if type(id) ~= "string" or id == "" then
        usage(string.format("%s: the dangling image has no id to address it by", where))
      end
      -- NOTE: the image API document addresses images by repository and tag
      -- only. A dangling image is sent as repository = its id and tag = <none>,
      -- which is what `docker rmi <id>` accepts; a NAS may reject it.
      return id, "<none>", id
    end
    first, second = repository, tag
  end
  if type(first) ~= "string" then
    usage(string.format("%s: expected a reference such as \"nginx:1.25\", or repository and tag, got %s",
      where, type(first)))
  end
  if second == nil then
    if first:match("^sha256:%x+$") then
      usage(string.format("%s: %q is an image id, not a reference; pass the image from image.list() "
        .. "or its repository:tag", where, first))
    end
    local ref, message = reference.parse(first, latest_by_default)
    if not ref then
      usage(string.format("%s: %s", where, message))
    end
    local tag = ref.digest or ref.tag
    -- The parts were validated by parse, so they are joined as reference.format
    -- would join them, without validating them again.
    local display = ref.repository
    if ref.tag then
      display = display .. ":" .. ref.tag
    end
    if ref.digest then
      display = display .. "@" .. ref.digest
    end
    return ref.repository, tag, display
  end
  if type(second) ~= "string" then
    usage(string.format("%s: tag must be a string, got %s", where, type(second)))
  end
  local ok, message = reference.valid_repository(first)
  if not ok then
    usage(string.format("%s: %s", where, message))
  end
  ok, message = reference.valid_tag(second)
  if not ok then
    usage(string.format("%s: %s", where, message))
  end
  return first, second, first .. ":" .. second
end

-- Splits (ref, options) from (repository, tag, options).
local function split_arguments(first, second, third)
  if type(second) == "table" and third == nil then
    return first, nil, second
  end
  return first, second, third
end

--- The largest number of images image.list requests at once, about 400 KB
-- of JSON. A long listing arrives in pages, so the JSON text of the
-- whole inventory (about 200 bytes an image) is never held in memory next to
-- the records decoded from it (about 400 bytes an image).
M.list_page_size = 2000

-- Appends the records of page to images, with integer sizes and times.
local function append_images(images, page)
  for _, item in ipairs(page) do
    images[#images + 1] = integers(item, image_number_fields)
  end
end

-- Lists limit images (-1: all) from offset, in requests of at most
-- M.list_page_size images. Returns images, total.
local function list_in_pages(session, offset, limit, show_dsm)
  local page_size = M.list_page_size
  local images, total = {}, nil
  while limit == -1 or #images < limit do
    local requested = limit == -1 and page_size or math.min(page_size, limit - #images)
    local page, page_total = M.invoke(session, "list",
      { offset = offset + #images, limit = requested, show_dsm = show_dsm })
    page_total = math.tointeger(page_total) or page_total
    if total ~= nil and page_total ~= total then
      -- The inventory changed between two pages, so the pages may overlap or
      -- leave an image out. One request for everything is consistent.
      core.message("debug", "the image list changed while paging; listing again in one request")
      local all, all_total = M.invoke(session, "list", { offset = offset, limit = limit, show_dsm = show_dsm })
      images = {}
      append_images(images, all)
      return images, math.tointeger(all_total) or all_total
    end
    total = page_total
    append_images(images, page)
    if #page < requested or (math.type(total) == "integer" and offset + #images >= total) then
      break
    end
  end
  -- NOTE: a change between two pages that leaves the total unchanged (one
  -- image added, one deleted) goes unnoticed, and the listing may then repeat
  -- or miss one image at a page boundary.
  return images, total
end

--- Builds the syno.image table for the session that get_session returns.
function M.image_module(get_session)
  local image = {}

  --- image.list{offset = 0, limit = -1, show_dsm = false} --> images, total
  function image.list(options)
    options = check_options("image.list", options, { offset = true, limit = true, show_dsm = true })
    local offset = options.offset or 0
    local limit = options.limit or -1
    if math.type(offset) ~= "integer" or offset < 0 then
      usage(string.format("image.list: offset must be an integer >= 0, got %s", describe(options.offset)))
    end
    if math.type(limit) ~= "integer" or limit < -1 then
      usage(string.format("image.list: limit must be an integer >= -1 (-1 = all), got %s",
        describe(options.limit)))
    end
    check_type("image.list", "show_dsm", options.show_dsm, "boolean")
    return list_in_pages(get_session(), offset, limit, options.show_dsm or false)
  end

  --- image.get(repository, tag) or image.get(reference) --> image
  function image.get(first, second)
    local repository, tag, display = target("image.get", first, second)
    return integers(M.invoke(get_session(), "get", { repository = repository, tag = tag }, "get " .. display),
      image_number_fields)
  end

  --- image.pull(repository, tag, {registry = url}) or image.pull(reference, options) --> task_id
  function image.pull(first, second, third)
    local options
    first, second, options = split_arguments(first, second, third)
    options = check_options("image.pull", options, { registry = true })
    check_type("image.pull", "registry", options.registry, "string")
    local repository, tag, display = target("image.pull", first, second)
    return M.invoke(get_session(), "pull",
      { repository = repository, tag = tag, registry = options.registry }, "pull " .. display)
  end

  --- image.delete(repository, tag, {force = false}) or image.delete(reference, options) --> true
  function image.delete(first, second, third)
    local options
    first, second, options = split_arguments(first, second, third)
    options = check_options("image.delete", options, { force = true })
    check_type("image.delete", "force", options.force, "boolean")
    local repository, tag, display = target("image.delete", first, second)
    return M.invoke(get_session(), "delete",
      { repository = repository, tag = tag, force = options.force or false }, "delete " .. display)
  end

  --- image.search(query, {registry = url}) --> results
  function image.search(query, options)
    if type(query) ~= "string" or query == "" then
      usage("image.search: query must be a non-empty string")
    end
    options = check_options("image.search", options, { registry = true })
    check_type("image.search", "registry", options.registry, "string")
    return M.invoke(get_session(), "search", { query = query, registry = options.registry },
      string.format("search for %q", query))
  end

  image.registry = {}

  --- image.registry.list() --> registries
  function image.registry.list()
    return M.invoke(get_session(), "registry_list", {})
  end

  --- image.registry.add{name =, url =, username =, password =} --> true
  function image.registry.add(options)
    if type(options) ~= "table" then
      usage("image.registry.add: expected a table {name = ..., url = ...}")
    end
    options = check_options("image.registry.add", options,
      { name = true, url = true, username = true, password = true })
    for _, key in ipairs { "name", "url" } do
      if type(options[key]) ~= "string" or options[key] == "" then
        usage(string.format("image.registry.add: %s must be a non-empty string", key))
      end
    end
    check_type("image.registry.add", "username", options.username, "string")
    check_type("image.registry.add", "password", options.password, "string")
    return M.invoke(get_session(), "registry_add", options,
      string.format("add registry %q (%s)", options.name, options.url))
  end

  return image
end

return M
