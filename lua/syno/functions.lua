--- The syno.image and syno.container functions, built for one session. Each
-- function checks its arguments and runs one operation of the session's
-- dialect through syno.operations. None of them contains wire details.

local core = require "syno.core"
local dsm = require "syno.dsm"
local errors = require "syno.errors"
local operations = require "syno.operations"
local reference = require "syno.reference"

local M = {}

-- Items per SYNO.Docker.Image delete call of image.delete_many, unless the
-- caller gives batch_size.
M.default_batch_size = 20

local function usage(message)
  errors.raise { kind = "usage", message = message }
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

local function check_name(where, name, value)
  if type(value) ~= "string" or value == "" then
    usage(string.format("%s: %s must be a non-empty string, got %s", where, name, describe(value)))
  end
end

local function check_repository(where, repository)
  check_name(where, "repository", repository)
  local ok, message = reference.valid_repository(repository)
  if not ok then
    usage(string.format("%s: %s", where, message))
  end
end

local function check_seconds(where, name, value)
  if value ~= nil and (type(value) ~= "number" or value <= 0 or value > 86400) then
    usage(string.format("%s: %s must be a number of seconds greater than 0 and at most 86400, got %s",
      where, name, describe(value)))
  end
end

local function is_dangling(repository, tag)
  return repository == "<none>" or tag == "<none>" or repository == "" or tag == ""
end

--- Resolves the image arguments of get, pull and delete: (reference),
-- (repository, tag) or (image record from list). Returns repository, tag and
-- the display name. A dangling image is named by its id.
local latest_by_default = { default_tag = "latest" }

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

-- Checks a task id from image.pull or image.upgrade.
local function check_task(where, task_id)
  if type(task_id) ~= "string" or task_id == "" then
    usage(string.format("%s: task_id must be the non-empty string that image.pull or image.upgrade "
      .. "returned, got %s", where, describe(task_id)))
  end
end

-- The status operation that follows task_id: upgrade_status for the tasks
-- that image.upgrade started on this session, else pull_status.
local function status_operation(session, task_id)
  if session.upgrade_tasks and session.upgrade_tasks[task_id] then
    return "upgrade_status"
  end
  return "pull_status"
end

-- Returns the status of task_id by status operation name. Under dry run the
-- task "dry-run" (what pull and upgrade return then) is finished at once.
local function task_status(session, name, task_id)
  operations.require(session, name)
  if session.dry_run and task_id == "dry-run" then
    return { finished = true }
  end
  return operations.run(session, name, { task_id = task_id }, "read the status of task " .. task_id)
end

-- Error kinds after which a write may have happened on the NAS although no
-- response came back: the request was sent, then the connection or the response
-- failed.
local uncertain_kinds = { network = true, timeout = true, protocol = true }

-- Lists the NAS's images and returns the set of names ("repository:tag") and
-- ids (without "sha256:") it has.
local function present_images(session)
  local images = operations.run(session, "list", { offset = 0, limit = -1, show_dsm = true })
  local present = {}
  for _, image in ipairs(images) do
    present[tostring(image.repository) .. ":" .. tostring(image.tag)] = true
    if type(image.id) == "string" then
      present["id:" .. image.id:gsub("^sha256:", "")] = true
    end
  end
  return present
end

local function is_present(present, item)
  if item.dangling then
    return present["id:" .. item.repository:gsub("^sha256:", "")] == true
  end
  return present[item.repository .. ":" .. item.tag] == true
end

--- Decides a delete whose response was lost (err of an uncertain kind): reads
-- the images back instead of sending the delete again, because a repeated
-- delete could remove what another tag or a new pull brought back. Returns
-- true when the image is gone, or raises err with what the check found.
local function confirm_deleted(session, item, err)
  local ok, present = pcall(present_images, session)
  if not ok then
    err.message = string.format("%s; whether %s was deleted is unknown, because reading the images "
      .. "back failed too (%s)", err.message, item.display, tostring(present))
    error(err, 0)
  end
  if is_present(present, item) then
    err.message = string.format("%s; %s is still on the NAS, so it was not deleted", err.message,
      item.display)
    error(err, 0)
  end
  core.message("info", string.format("the response to the delete of %s was lost (%s), but the image is "
    .. "gone, so it counts as deleted", item.display, err.kind))
  return true
end
M.confirm_deleted = confirm_deleted

-- Runs the delete of one resolved item, reading back after a lost response.
local function delete_one(session, item, force)
  local ok, err = pcall(operations.run, session, "delete",
    { repository = item.repository, tag = item.tag, display = item.display, force = force or false },
    "delete " .. item.display)
  if ok then
    return err
  end
  if errors.is(err) and uncertain_kinds[err.kind] and not session.dry_run then
    return confirm_deleted(session, item, err)
  end
  error(err, 0)
end

-- Deletes resolved items one by one, for a dialect without batch delete.
local function delete_each(session, items)
  local results = {}
  for index, item in ipairs(items) do
    local ok, err = pcall(delete_one, session, item, false)
    if ok then
      results[index] = { image = item.image, ok = true }
    else
      results[index] = { image = item.image, ok = false, error = err }
      -- An interrupt stops the run after the current call.
      if (type(err) == "table" and err.kind == "interrupted") or core.interrupted() then
        break
      end
    end
  end
  return results
end

--- The largest number of images image.list requests at once from a NAS that
-- pages on the server (the document dialect), about 400 KB of JSON. A long
-- listing arrives in pages, so the JSON text of the whole inventory (about
-- 200 bytes an image) is never held in memory next to the records decoded
-- from it (about 400 bytes an image).
M.list_page_size = 2000

-- Appends the records of page to images, with integer sizes and times.
local function append_images(images, page)
  for _, item in ipairs(page) do
    images[#images + 1] = dsm.integers(item, image_number_fields)
  end
end

-- Lists limit images (-1: all) from offset, in requests of at most
-- M.list_page_size images. Returns images, total.
local function list_in_pages(session, offset, limit, show_dsm)
  local page_size = M.list_page_size
  local images, total = {}, nil
  while limit == -1 or #images < limit do
    local requested = limit == -1 and page_size or math.min(page_size, limit - #images)
    local page, page_total = operations.run(session, "list",
      { offset = offset + #images, limit = requested, show_dsm = show_dsm })
    page_total = math.tointeger(page_total) or page_total
    if total ~= nil and page_total ~= total then
      -- The inventory changed between two pages, so the pages may overlap or
      -- leave an image out. One request for everything is consistent.
      core.message("debug", "the image list changed while paging; listing again in one request")
      local all, all_total = operations.run(session, "list", { offset = offset, limit = limit, show_dsm = show_dsm })
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
    local session = get_session()
    if operations.offers(session, "list_pages") then
      return list_in_pages(session, offset, limit, options.show_dsm or false)
    end
    local images, total = operations.run(session, "list",
      { offset = offset, limit = limit, show_dsm = options.show_dsm or false })
    for _, item in ipairs(images) do
      dsm.integers(item, image_number_fields)
    end
    return images, math.tointeger(total) or total
  end

  --- image.get(repository, tag) or image.get(reference) --> image
  function image.get(first, second)
    local repository, tag, display = target("image.get", first, second)
    return dsm.integers(operations.run(get_session(), "get",
      { repository = repository, tag = tag, display = display }, "get " .. display), image_number_fields)
  end

  --- image.pull(repository, tag, {registry = url}) or image.pull(reference, options) --> task_id
  function image.pull(first, second, third)
    local options
    first, second, options = split_arguments(first, second, third)
    options = check_options("image.pull", options, { registry = true })
    check_type("image.pull", "registry", options.registry, "string")
    local repository, tag, display = target("image.pull", first, second)
    return operations.run(get_session(), "pull",
      { repository = repository, tag = tag, registry = options.registry }, "pull " .. display)
  end

  --- image.delete(repository, tag, {force = false}) or image.delete(reference, options) --> true
  function image.delete(first, second, third)
    local options
    first, second, options = split_arguments(first, second, third)
    options = check_options("image.delete", options, { force = true })
    check_type("image.delete", "force", options.force, "boolean")
    local repository, tag, display = target("image.delete", first, second)
    return delete_one(get_session(), { repository = repository, tag = tag, display = display,
      dangling = tag == "<none>" }, options.force)
  end

  --- image.delete_many(images, {batch_size = 20}) --> results
  -- images: image records from image.list (or references). Returns one
  -- result per image, in order: {image =, ok = true} or {image =, ok = false,
  -- error =}. A failed item does not stop the others.
  function image.delete_many(list, options)
    if type(list) ~= "table" then
      usage(string.format("image.delete_many: expected a list of images from image.list(), got %s",
        type(list)))
    end
    options = check_options("image.delete_many", options, { batch_size = true })
    local batch_size = options.batch_size or M.default_batch_size
    if math.type(batch_size) ~= "integer" or batch_size < 1 then
      usage(string.format("image.delete_many: batch_size must be an integer >= 1, got %s",
        describe(options.batch_size)))
    end
    local items = {}
    for index, item in ipairs(list) do
      local repository, tag, display = target(string.format("image.delete_many: image %d", index), item)
      items[index] = { image = item, repository = repository, tag = tag, display = display,
                       dangling = tag == "<none>" }
    end
    local session = get_session()
    if #items == 0 then
      return {}
    end
    if operations.offers(session, "delete_many") then
      local results = operations.run(session, "delete_many", { items = items, batch_size = batch_size })
      -- Where the response to a batch was lost, read back which images are gone
      -- instead of sending the batch again.
      local uncertain = false
      for _, result in ipairs(results) do
        uncertain = uncertain or (not result.ok and errors.is(result.error) and uncertain_kinds[result.error.kind])
      end
      if uncertain and not session.dry_run then
        local read, present = pcall(present_images, session)
        for index, result in ipairs(results) do
          local err = result.error
          if not result.ok and errors.is(err) and uncertain_kinds[err.kind] then
            if read and not is_present(present, items[index]) then
              result.ok, result.error = true, nil
            elseif read then
              result.error = errors.new { kind = err.kind, code = err.code, api = err.api, method = err.method,
                message = string.format("%s; %s is still on the NAS, so it was not deleted", err.message,
                  items[index].display) }
            end
          end
        end
      end
      return results
    end
    return delete_each(session, items)
  end

  --- image.search(query, {registry = url}) --> results
  function image.search(query, options)
    if type(query) ~= "string" or query == "" then
      usage("image.search: query must be a non-empty string")
    end
    options = check_options("image.search", options, { registry = true })
    check_type("image.search", "registry", options.registry, "string")
    return operations.run(get_session(), "search", { query = query, registry = options.registry },
      string.format("search for %q", query))
  end

  --- image.pull_status(task_id) --> {description, downloaded, finished, repository, tag}
  function image.pull_status(task_id)
    check_task("image.pull_status", task_id)
    return task_status(get_session(), "pull_status", task_id)
  end

  --- image.upgrade(repository) --> task_id
  function image.upgrade(repository)
    check_repository("image.upgrade", repository)
    local session = get_session()
    local task_id = operations.run(session, "upgrade", { repository = repository }, "upgrade " .. repository)
    session.upgrade_tasks = session.upgrade_tasks or {}
    session.upgrade_tasks[task_id] = true
    return task_id
  end

  --- image.upgrade_status(task_id) --> {current, total, finished, state, image}
  function image.upgrade_status(task_id)
    check_task("image.upgrade_status", task_id)
    return task_status(get_session(), "upgrade_status", task_id)
  end

  --- image.wait(task_id, {timeout = 600, interval = 2}) --> final status
  -- Polls the status of a pull or upgrade task until it reports finished.
  function image.wait(task_id, options)
    check_task("image.wait", task_id)
    options = check_options("image.wait", options, { timeout = true, interval = true })
    check_seconds("image.wait", "timeout", options.timeout)
    check_seconds("image.wait", "interval", options.interval)
    local session = get_session()
    operations.require(session, "pull_status", "image.wait")
    local name = status_operation(session, task_id)
    local timeout, interval = options.timeout or 600, options.interval or 2
    local deadline = core.monotonic() + timeout
    while true do
      local status = task_status(session, name, task_id)
      if status.finished then
        return status
      end
      if core.monotonic() + interval > deadline then
        errors.raise { kind = "timeout", message = string.format("task %s on %s did not finish within "
          .. "%g s; it goes on on the NAS, so check it later with image.%s(%q)", task_id, session.url,
          timeout, name, task_id) }
      end
      core.sleep(interval)
    end
  end

  --- image.prune() --> {ImagesDeleted =, SpaceReclaimed =}
  function image.prune()
    return operations.run(get_session(), "prune", {}, "prune unused images")
  end

  --- image.offers(name) --> whether the NAS offers image.<name>: "pull_status",
  -- "wait", "prune", "upgrade" or "delete_many" (deletes in batches, not one by one)
  function image.offers(name)
    return operations.offers(get_session(), name)
  end

  --- image.dry_run() --> true when this session sends no write call
  function image.dry_run()
    return get_session().dry_run and true or false
  end

  image.registry = {}

  --- image.registry.list() --> registries
  function image.registry.list()
    return operations.run(get_session(), "registry_list", {})
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
    return operations.run(get_session(), "registry_add", options,
      string.format("add registry %q (%s)", options.name, options.url))
  end

  --- image.registry.use(name) --> true
  function image.registry.use(name)
    check_name("image.registry.use", "name", name)
    return operations.run(get_session(), "registry_use", { name = name },
      string.format("make registry %q active", name))
  end

  --- image.registry.remove(name) --> true
  function image.registry.remove(name)
    check_name("image.registry.remove", "name", name)
    return operations.run(get_session(), "registry_remove", { name = name },
      string.format("remove registry %q", name))
  end

  --- image.registry.tags(repository) --> list of tag strings
  function image.registry.tags(repository)
    check_repository("image.registry.tags", repository)
    return operations.run(get_session(), "registry_tags", { repository = repository },
      "list the tags of " .. repository)
  end

  return image
end

--- Builds the syno.container table for the session that get_session returns.
function M.container_module(get_session)
  local container = {}

  --- container.list() --> containers, total
  -- Every container, running or not, with at least name, image (the
  -- reference it runs) and status.
  function container.list()
    return operations.run(get_session(), "container_list", {}, "list the containers")
  end

  --- container.offered() --> whether the NAS offers the container list
  function container.offered()
    return operations.offers(get_session(), "container_list")
  end

  return container
end

return M
