--- The image API as the DSM 6 Docker package and DSM 7 Container Manager
-- speak it: SYNO.Docker.Image, SYNO.Docker.Registry and SYNO.Docker.Container,
-- all taking JSON literals. Its rows are the wire calls, and the perform
-- functions map each syno.image operation onto them, so that scripts see the
-- records of the document dialect (one image per tag, is_default on
-- registries).

local dsm = require "syno.dsm"
local errors = require "syno.errors"
local shape = require "syno.dialect.shape"

local IMAGE = "SYNO.Docker.Image"
local REGISTRY = "SYNO.Docker.Registry"
local CONTAINER = "SYNO.Docker.Container"

-- Results that image.search returns at most. SYNO.Docker.Registry search
-- pages its results, and synosh reads the first page only.
local SEARCH_LIMIT = 50

local M = {
  name = "container-manager",

  -- Chosen when SYNO.API.Info offers this API.
  signature = { "SYNO.Docker.Registry" },

  -- Values other than api, method, version and _sid go on the wire as JSON
  -- literals: strings quoted, numbers and booleans bare, tables as JSON.
  encoding = "json",

  hints = {
    [1002] = "remove the container that uses it first (Container Manager has no forced image delete)",
    [1052] = "a search needs a registry with a search API; make another registry active with "
      .. "image.registry.use(name)",
    [1053] = "the active registry offers no search; make another registry active with "
      .. "image.registry.use(name)",
  },
}

local function returns_true()
  return true
end

M.operations = {
  list = {
    api = IMAGE, method = "list", version = 1, http = "GET",
    params = { "offset", "limit", "show_dsm" },
  },
  details = {
    -- NOTE: a DSM 7.4 capture sends the id from list as identity, but other
    -- clients send image and tag. Which one other DSM releases take is not known.
    api = IMAGE, method = "get", version = 1, http = "GET",
    params = { "identity" },
  },
  pull = {
    api = IMAGE, method = "pull_start", version = 1, http = "POST", write = true,
    params = { "repository", "tag" },
    dry_run = function()
      return { task_id = "dry-run" }
    end,
    result = function(data)
      return data.task_id
    end,
  },
  pull_status = {
    api = IMAGE, method = "pull_status", version = 1, http = "GET",
    params = { "task_id" },
    result = function(data)
      return dsm.integers(data, { "downloaded" })
    end,
  },
  upgrade = {
    api = IMAGE, method = "upgrade_start", version = 1, http = "POST", write = true,
    params = { "repository" },
    dry_run = function()
      return { task_id = "dry-run" }
    end,
    result = function(data)
      return data.task_id
    end,
  },
  upgrade_status = {
    api = IMAGE, method = "upgrade_status", version = 1, http = "GET",
    params = { "task_id" },
    result = function(data)
      return dsm.integers(data, { "current", "total" })
    end,
  },
  delete = {
    api = IMAGE, method = "delete", version = 1, http = "POST", write = true,
    params = { "images" },
    -- Under dry run every item of the batch counts as deleted.
    dry_run = function(values)
      local objects = {}
      for _, group in ipairs(values.images) do
        objects[group.repository] = objects[group.repository] or {}
        for _, tag in ipairs(group.tags) do
          objects[group.repository][tag] = { error = 0 }
        end
      end
      return { image_objects = objects }
    end,
  },
  prune = {
    api = IMAGE, method = "prune", version = 1, http = "POST", write = true,
    params = {},
    dry_run = function()
      return { ImagesDeleted = {}, SpaceReclaimed = 0 }
    end,
    result = function(data)
      data.ImagesDeleted = shape.objects(data, "ImagesDeleted", IMAGE .. " prune")
      return dsm.integers(data, { "SpaceReclaimed" })
    end,
  },
  registry_get = {
    api = REGISTRY, method = "get", version = { 1, 2 }, http = "GET",
    params = {},
  },
  registry_search = {
    api = REGISTRY, method = "search", version = { 1, 2 }, http = "GET",
    params = { "q", "offset", "limit", "page_size" },
  },
  registry_tags = {
    api = REGISTRY, method = "tags", version = { 1, 2 }, http = "GET",
    params = { "repo" },
  },
  registry_add = {
    api = REGISTRY, method = "create", version = { 1, 2 }, http = "POST", write = true,
    params = { "name", "url", "enable_trust_SSC", "username", "password" },
    result = returns_true,
  },
  registry_remove = {
    api = REGISTRY, method = "delete", version = { 1, 2 }, http = "POST", write = true,
    params = { "name" },
    result = returns_true,
  },
  registry_use = {
    api = REGISTRY, method = "using", version = { 1, 2 }, http = "POST", write = true,
    params = { "name" },
    result = returns_true,
  },
  container_list = {
    api = CONTAINER, method = "list", version = 1, http = "GET",
    params = { "offset", "limit", "type" },
    result = function(data)
      local total = data.total
      return shape.objects(data, "containers", CONTAINER .. " list"), math.tointeger(total) or total
    end,
  },
}

-- Returns one record per tag of each list entry, with tag in place of the
-- tags array. An entry without tags (a dangling image) gives one record with
-- repository and tag <none>.
local function records_of(data)
  local where = IMAGE .. " list"
  local records = {}
  for index, entry in ipairs(shape.objects(data, "images", where)) do
    local tags = shape.strings(entry, "tags", string.format("%s images[%d]", where, index))
    local function add(tag)
      local record = {}
      for key, value in pairs(entry) do
        if key ~= "tags" then
          record[key] = value
        end
      end
      record.tag = tag
      if tag == "<none>" then
        record.repository = "<none>"
      end
      records[#records + 1] = record
    end
    if #tags == 0 then
      add("<none>")
    end
    for _, tag in ipairs(tags) do
      add(tag)
    end
  end
  return records
end

-- Lists every image of the NAS as records.
local function list_all(context, show_dsm)
  local data = context.call("list", { offset = 0, limit = -1, show_dsm = show_dsm })
  return records_of(data)
end

local function image_key(record)
  return tostring(record.id) .. " " .. tostring(record.repository)
end

M.perform = {}

--- Lists the images as one record per tag. Container Manager pages by image
-- (all tags of one id), so offset and limit count records here, after one
-- call that lists every image.
function M.perform.list(context, values)
  local records = list_all(context, values.show_dsm)
  -- Container Manager's records have no is_ddsm. An image counts as DSM's own
  -- when the NAS hides it without show_dsm, which needs a second list.
  local visible = nil
  if values.show_dsm then
    visible = {}
    for _, record in ipairs(list_all(context, false)) do
      visible[image_key(record)] = true
    end
  end
  for _, record in ipairs(records) do
    record.is_ddsm = visible ~= nil and not visible[image_key(record)]
  end
  local page = {}
  local last = values.limit == -1 and #records or math.min(#records, values.offset + values.limit)
  for index = values.offset + 1, last do
    page[#page + 1] = records[index]
  end
  return page, #records
end

--- Finds the image by repository and tag (a dangling one by id) in the list,
-- then merges the details that get returns into its record.
function M.perform.get(context, values, description)
  local found
  for _, record in ipairs(list_all(context, true)) do
    local matches
    if values.tag == "<none>" then
      matches = record.tag == "<none>" and record.id == values.repository
    else
      matches = record.repository == values.repository and record.tag == values.tag
    end
    if matches then
      found = record
      break
    end
  end
  if not found then
    errors.raise { kind = "not_found", api = IMAGE, method = "get", message = string.format(
      "cannot %s: %s lists no image %s; check the name with image.list()", description,
      context.session.url, values.display) }
  end
  local image = context.call("details", { identity = found.id }, description)
  for key, value in pairs(found) do
    if image[key] == nil or key == "repository" or key == "tag" then
      image[key] = value
    end
  end
  return image
end

function M.perform.pull(context, values, description)
  if values.registry then
    context.unsupported("image.pull with the registry option", "Container Manager pulls from "
      .. "the active registry or from the registry host in the reference; make a registry active "
      .. "with image.registry.use(name), or pull \"ghcr.io/owner/name:tag\"")
  end
  return context.call("pull", { repository = values.repository, tag = values.tag }, description)
end

-- Sends one delete call for items ({repository, tag, display, image}) and
-- returns one result per item: {image =, ok = true} or {image =, ok = false,
-- error =}. The tags of one repository share one entry of the images array.
local function delete_batch(context, items)
  local images, groups = {}, {}
  local names = {}
  for _, item in ipairs(items) do
    local group = groups[item.repository]
    if not group then
      group = { repository = item.repository, tags = {} }
      groups[item.repository] = group
      images[#images + 1] = group
    end
    group.tags[#group.tags + 1] = item.tag
    names[#names + 1] = item.display
  end

  local results = {}
  local ok, data = pcall(context.call, "delete", { images = images }, "delete " .. table.concat(names, ", "))
  for index, item in ipairs(items) do
    local result = { image = item.image, ok = false }
    results[index] = result
    local entry = ok and type(data.image_objects) == "table"
      and type(data.image_objects[item.repository]) == "table"
      and data.image_objects[item.repository][item.tag]
    local code = type(entry) == "table" and math.tointeger(entry.error)
    if not ok then
      result.error = data
    elseif code == 0 then
      result.ok = true
    elseif code then
      local hint = M.hints[code] or (code == 1001 and "check the name with image.list()")
      result.error = errors.new {
        kind = errors.kind_of(code), code = code, api = IMAGE, method = "delete",
        message = string.format("cannot delete %s: %s delete failed: DSM error %d (%s)%s", item.display,
          IMAGE, code, errors.describe(code), hint and ("; " .. hint) or ""),
      }
    else
      result.error = errors.new {
        kind = "protocol", api = IMAGE, method = "delete", message = string.format(
          "cannot delete %s: %s delete returned no result for it in image_objects; read the "
          .. "images again with image.list() to see whether it is gone", item.display, IMAGE),
      }
    end
  end
  return results
end

-- Returns the "not offered" error of an item that Container Manager cannot
-- delete by name, or nil.
local function undeletable(context, item)
  if item.dangling then
    return context.unsupported_error(string.format("deleting the dangling image %s", item.display),
      "Container Manager deletes images by repository and tag only; image.prune() removes "
      .. "dangling images")
  end
  return nil
end

function M.perform.delete(context, values)
  if values.force then
    context.unsupported("image.delete with force = true", "Container Manager has no forced image "
      .. "delete; remove the containers that use the image first")
  end
  local item = { repository = values.repository, tag = values.tag, display = values.display,
                 dangling = values.tag == "<none>" }
  local err = undeletable(context, item)
  if err then
    error(err, 0)
  end
  local result = delete_batch(context, { item })[1]
  if not result.ok then
    error(result.error, 0)
  end
  return true
end

--- Deletes values.items in calls of at most values.batch_size items each.
-- A failed call fails each of its items; an item Container Manager cannot
-- delete by name fails without a call.
function M.perform.delete_many(context, values)
  local results = {}
  local batch, positions = {}, {}
  local function flush()
    if #batch == 0 then
      return
    end
    for index, result in ipairs(delete_batch(context, batch)) do
      results[positions[index]] = result
    end
    batch, positions = {}, {}
  end
  for index, item in ipairs(values.items) do
    local err = undeletable(context, item)
    if err then
      results[index] = { image = item.image, ok = false, error = err }
    else
      batch[#batch + 1] = item
      positions[#positions + 1] = index
      if #batch == values.batch_size then
        flush()
      end
    end
  end
  flush()
  return results
end

function M.perform.search(context, values, description)
  if values.registry then
    context.unsupported("image.search with the registry option", "Container Manager searches the "
      .. "active registry only; make another registry active with image.registry.use(name)")
  end
  local data = context.call("registry_search",
    { q = values.query, offset = 0, limit = SEARCH_LIMIT, page_size = SEARCH_LIMIT }, description)
  local results = shape.objects(data, "data", REGISTRY .. " search")
  for _, result in ipairs(results) do
    dsm.integers(result, { "star_count", "downloads" })
  end
  return results
end

--- Lists the registries; the one in use (the active registry) has is_default = true.
function M.perform.registry_list(context)
  local data = context.call("registry_get", {})
  local registries = shape.objects(data, "registries", REGISTRY .. " get")
  for _, registry in ipairs(registries) do
    registry.is_default = registry.name == data.using
  end
  return registries
end

function M.perform.registry_add(context, values, description)
  return context.call("registry_add", {
    name = values.name, url = values.url, enable_trust_SSC = false,
    username = values.username, password = values.password,
  }, description)
end

--- Returns the tags of a repository in the active registry as strings.
function M.perform.registry_tags(context, values, description)
  local data = context.call("registry_tags", { repo = values.repository }, description)
  local tags = {}
  for _, entry in ipairs(data) do
    if type(entry) == "table" and type(entry.tag) == "string" then
      tags[#tags + 1] = entry.tag
    end
  end
  return tags
end

--- Lists every container, running or stopped.
function M.perform.container_list(context, values, description)
  return context.call("container_list", { offset = 0, limit = -1, type = "all" }, description)
end

return M
