--- Checks of the JSON a dialect reads. Each raises a protocol error that
-- names the call, the field and the type found, so a malformed response
-- never reaches a script as a Lua runtime error.

local cjson = require "cjson"
local errors = require "syno.errors"

local M = {}

--- Raises the protocol error for field of the result of where, whose value
-- has the wrong JSON type.
function M.error(where, field, value, expected)
  errors.raise { kind = "protocol", message = string.format(
    "%s returned %s %s where %s was expected; the NAS sent a response this client cannot read",
    where, field, errors.json_type(value), expected) }
end

--- Returns true when value is a table whose keys are exactly 1..#value.
function M.is_array(value)
  if type(value) ~= "table" then
    return false
  end
  local count = 0
  for _ in pairs(value) do
    count = count + 1
  end
  return count == #value
end

-- Returns data[field] when it is an array whose items all have the Lua type
-- item_type (item_name in messages). A missing field, or null, is an empty array.
local function array_of(data, field, where, item_type, item_name)
  local value = data[field]
  if value == nil or value == cjson.null then
    return {}
  end
  if not M.is_array(value) then
    M.error(where, field, value, "an array")
  end
  for index, item in ipairs(value) do
    if type(item) ~= item_type then
      M.error(where, string.format("%s[%d]", field, index), item, item_name)
    end
  end
  return value
end

--- Returns data[field] when it is an array of objects; a missing field, or
-- null, is an empty array.
function M.objects(data, field, where)
  return array_of(data, field, where, "table", "an object")
end

--- Returns data[field] when it is an array of strings; a missing field, or
-- null, is an empty array.
function M.strings(data, field, where)
  return array_of(data, field, where, "string", "a string")
end

-- JSON names of the Lua types that optional() checks for.
local json_names = { table = "an object", number = "a number", string = "a string" }

--- Returns data[field] when it is nil or of the Lua type expected.
function M.optional(data, field, expected, where)
  local value = data[field]
  if value ~= nil and type(value) ~= expected then
    M.error(where, field, value, json_names[expected])
  end
  return value
end

return M
