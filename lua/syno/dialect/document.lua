--- The image API as the user's API document describes it: one table row per
-- Lua operation, naming the DSM API, method, version, HTTP method, parameters
-- (in wire order) and how to read the response.
--
-- A dialect is data; syno.operations describes the shape and runs it. Every
-- operation of this dialect is one wire row. The operations that only
-- Container Manager has are missing here, so they raise kind "unsupported".
--
-- A result function receives the envelope's data (always a table) and raises
-- a protocol error when a field it reads has the wrong JSON type, so a
-- malformed response never reaches a script as a Lua runtime error.

local shape = require "syno.dialect.shape"
local shape_error, objects, optional = shape.error, shape.objects, shape.optional

return {
  name = "document",

  -- Chosen when SYNO.API.Info offers these APIs.
  signature = { "SYNO.Docker.Image.Search", "SYNO.Docker.Image.Registry" },

  -- Values go on the wire as plain form values (booleans as true/false).
  encoding = "plain",

  hints = {
    [1002] = "remove the container that uses it first",
  },

  -- What image.offers(name) reports beyond the operations: delete_untagged,
  -- a dangling image deleted by its id (sent as repository, as `docker rmi
  -- <id>` takes it).
  -- list_pages, a list that the NAS pages by offset and limit, so a long
  -- listing can come in several requests.
  capabilities = { delete_untagged = true, list_pages = true },

  operations = {
    list = {
      api = "SYNO.Docker.Image", method = "list", version = 1, http = "GET",
      params = { "offset", "limit", "show_dsm" },
      result = function(data)
        local where = "SYNO.Docker.Image list"
        return objects(data, "images", where), optional(data, "total", "number", where)
      end,
    },
    get = {
      api = "SYNO.Docker.Image", method = "get", version = 1, http = "GET",
      params = { "repository", "tag" },
      result = function(data)
        return optional(data, "image", "table", "SYNO.Docker.Image get")
      end,
    },
    pull = {
      api = "SYNO.Docker.Image", method = "pull", version = 1, http = "POST", write = true,
      params = { "repository", "tag", "registry" },
      dry_run = function()
        return { task_id = "dry-run" }
      end,
      result = function(data)
        local task_id = data.task_id
        if task_id ~= nil and type(task_id) ~= "string" and type(task_id) ~= "number" then
          shape_error("SYNO.Docker.Image pull", "task_id", task_id, "a string")
        end
        return task_id
      end,
    },
    delete = {
      api = "SYNO.Docker.Image", method = "delete", version = 1, http = "POST", write = true,
      params = { "repository", "tag", "force" },
      result = function()
        return true
      end,
    },
    search = {
      api = "SYNO.Docker.Image.Search", method = "search", version = 1, http = "GET",
      params = { "query", "registry" },
      result = function(data)
        return objects(data, "images", "SYNO.Docker.Image.Search search")
      end,
    },
    registry_list = {
      api = "SYNO.Docker.Image.Registry", method = "list", version = 1, http = "GET",
      params = {},
      result = function(data)
        return objects(data, "registries", "SYNO.Docker.Image.Registry list")
      end,
    },
    registry_add = {
      api = "SYNO.Docker.Image.Registry", method = "add", version = 1, http = "POST", write = true,
      params = { "name", "url", "username", "password" },
      result = function()
        return true
      end,
    },
  },
}
