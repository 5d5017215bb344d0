--- Formatting helpers for people: sizes, ages and references.

local M = {}

local units = { "B", "kB", "MB", "GB", "TB", "PB" }

--- Formats a byte count with decimal units, as docker does: 157286400 -> "157.3 MB".
function M.size(bytes)
  if type(bytes) ~= "number" or bytes < 0 then
    return "?"
  end
  local unit = 1
  while bytes >= 1000 and unit < #units do
    bytes = bytes / 1000
    unit = unit + 1
  end
  if unit == 1 then
    return string.format("%d B", bytes)
  end
  return string.format("%.1f %s", bytes, units[unit])
end

--- Returns true when created (unix seconds) is a usable timestamp.
function M.known_time(created)
  return type(created) == "number" and created > 0
end

--- Formats the age of a unix timestamp relative to now: "3 days ago".
function M.age(created, now)
  if not M.known_time(created) then
    return "unknown age"
  end
  local seconds = (now or os.time()) - created
  if seconds < 0 then
    return "in the future"
  end
  local steps = {
    { 365 * 86400, "year" }, { 30 * 86400, "month" }, { 7 * 86400, "week" },
    { 86400, "day" }, { 3600, "hour" }, { 60, "minute" },
  }
  for _, step in ipairs(steps) do
    local count = seconds // step[1]
    if count >= 1 then
      return string.format("%d %s%s ago", count, step[2], count == 1 and "" or "s")
    end
  end
  return "just now"
end

--- Returns "repository:tag" for an image record, or its id when it is dangling.
function M.image_name(image)
  local repository, tag = image.repository, image.tag
  if repository == nil or repository == "" or repository == "<none>" then
    return string.format("<none> (%s)", M.short_id(image.id))
  end
  if tag == nil or tag == "" or tag == "<none>" then
    return string.format("%s:<none> (%s)", repository, M.short_id(image.id))
  end
  return repository .. ":" .. tag
end

--- Shortens "sha256:<hex>" to its first 12 hex digits, as docker shows ids.
function M.short_id(id)
  if type(id) ~= "string" then
    return "?"
  end
  return (id:gsub("^sha256:", "")):sub(1, 12)
end

return M
