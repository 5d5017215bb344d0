--- Glob patterns on image references, for the include and exclude rules.
--
-- A pattern is matched against the whole "repository:tag" of an image, from
-- its first character to its last (anchored):
--   *        any run of characters, "/" and ":" included
--   ?        one character
--   [abc]    one of the characters; [a-z] a range; [!abc] none of them
-- A pattern with no tag (no ":" after its last "/") matches every tag of the
-- repository: "redis" is "redis:*", "lscr.io/*" is "lscr.io/*:*".
-- A pattern that starts with "sha256:" is matched against the image id.
--
-- A pattern that can never match a valid reference (a regular expression
-- such as "redis:.*", capitals in the repository, characters no reference
-- has) is rejected with a message that gives the reason, because an exclude pattern
-- that silently matches nothing would let a cleanup delete what it names.

local M = {}

local function invalid(pattern, problem)
  return nil, string.format('invalid pattern "%s": %s', pattern, problem)
end

-- Returns a glob to suggest for a pattern that looks like a regular
-- expression: ".*" and ".+" become "*", anchors and groups go.
local function suggestion(pattern)
  local glob = pattern:gsub("%.[%*%+]", "*"):gsub("[%^%$%(%)]", "")
  if glob:find("^[%w%._/:@%*%?%-]+$") then
    return glob
  end
  local name = glob:match("^[%w%._/:-]*"):gsub("[%.:%-]+$", "")
  return (name ~= "" and name or "name") .. "*"
end

-- Characters a reference can contain, plus the glob characters.
local allowed = "^[%w%.%-_/:@%*%?%[%]!]*$"

-- Splits a pattern into its repository part and its tag part (nil when the
-- pattern has no tag), at the last ":" after the last "/".
local function split(pattern)
  local last_slash = 0
  for i = #pattern, 1, -1 do
    if pattern:sub(i, i) == "/" then
      last_slash = i
      break
    end
  end
  local colon = pattern:find(":", last_slash + 1, true)
  if colon then
    return pattern:sub(1, colon - 1), pattern:sub(colon + 1)
  end
  return pattern, nil
end
M.split = split

-- Translates glob text into a Lua pattern body.
local function translate(glob, original)
  local out = {}
  local i = 1
  while i <= #glob do
    local c = glob:sub(i, i)
    if c == "*" then
      out[#out + 1] = ".*"
    elseif c == "?" then
      out[#out + 1] = "."
    elseif c == "[" then
      local close = glob:find("]", i + 1, true)
      if not close then
        return invalid(original, string.format("\"[\" at character %d has no closing \"]\"", i))
      end
      local set = glob:sub(i + 1, close - 1)
      local negate = false
      if set:sub(1, 1) == "!" then
        negate, set = true, set:sub(2)
      end
      if set == "" then
        return invalid(original, "empty character set \"[]\"")
      end
      if set:find("[%[!%*%?]") then
        return invalid(original, "a character set may hold only letters, digits and . _ - / : @")
      end
      -- Escape the punctuation that is magic inside a Lua set, except "-"
      -- between two characters, which is a range.
      local escaped = set:gsub("[%.%%_/:@]", "%%%0")
      if escaped:sub(1, 1) == "-" then
        escaped = "%-" .. escaped:sub(2)
      end
      if escaped:sub(-1) == "-" then
        escaped = escaped:sub(1, -2) .. "%-"
      end
      out[#out + 1] = "[" .. (negate and "^" or "") .. escaped .. "]"
      i = close
    elseif c == "]" then
      return invalid(original, string.format("\"]\" at character %d has no opening \"[\"", i))
    elseif c == "!" then
      return invalid(original, "\"!\" is only valid right after \"[\"")
    elseif c:match("%w") then
      out[#out + 1] = c
    else
      out[#out + 1] = "%" .. c
    end
    i = i + 1
  end
  return table.concat(out)
end

--- Compiles pattern. Returns a matcher {pattern =, matches = function(image)}
-- or nil and a one-line message that names the problem and the glob to write.
function M.compile(pattern)
  if type(pattern) ~= "string" then
    return nil, string.format("a pattern must be a string, got %s", type(pattern))
  end
  if pattern == "" then
    return nil, "a pattern must not be empty; use \"*\" to match every image"
  end
  if pattern:find("%s") then
    return invalid(pattern, "patterns have no spaces")
  end
  if not pattern:find(allowed) then
    local bad = pattern:match("[^%w%.%-_/:@%*%?%[%]!]")
    local hint = ""
    if bad == "," or bad == "{" or bad == "}" or bad == "|" then
      hint = "; give one pattern per --exclude or --include (a list in Lua)"
    elseif bad:find("[%^%$%+%(%)|\\]") then
      hint = string.format('; it looks like a regular expression: write a glob, such as "%s"', suggestion(pattern))
    end
    return invalid(pattern, string.format('"%s" cannot appear in an image reference%s', bad, hint))
  end

  local by_id = pattern:match("^sha256:(.*)$")
  if by_id then
    if not by_id:find("^[%x%*%?%[%]!%-]*$") then
      return invalid(pattern, "an image id has only hex digits after \"sha256:\"")
    end
    local body, message = translate(by_id, pattern)
    if not body then
      return nil, message
    end
    local lua_pattern = "^" .. body .. "$"
    return {
      pattern = pattern,
      matches = function(image)
        local id = type(image.id) == "string" and image.id:gsub("^sha256:", "") or ""
        return id:find(lua_pattern) ~= nil
      end,
    }
  end

  local repository, tag = split(pattern)
  if repository:find(".*", 1, true) then
    return invalid(pattern, string.format('".*" in a repository looks like a regular expression; in a glob '
      .. '"*" alone matches any characters, so write "%s"', suggestion(pattern)))
  end
  if repository == "" then
    return invalid(pattern, "the repository part before \":\" is empty; write \"*:TAG\" to match a tag in every repository")
  end
  if repository:find("%u") then
    return invalid(pattern, "repository names are lowercase, so capitals there never match")
  end
  for component in (repository .. "/"):gmatch("(.-)/") do
    if component == "" then
      return invalid(pattern, "the repository has an empty path component (\"//\" or a \"/\" at an end)")
    end
    if component:find("^[%.%-_]") then
      return invalid(pattern, string.format('a repository component cannot start with "%s"',
        component:sub(1, 1)))
    end
  end
  if tag ~= nil then
    if tag == "" then
      return invalid(pattern, "the tag after \":\" is empty; write \"" .. repository .. ":*\" for every tag")
    end
    if tag:find("^[%.%-]") then
      return invalid(pattern, string.format('a tag cannot start with "%s"%s', tag:sub(1, 1),
        tag:sub(1, 2) == ".*" and string.format('; it looks like a regular expression: write "%s"',
          suggestion(pattern)) or ""))
    end
    if tag:find(":", 1, true) then
      return invalid(pattern, "a tag cannot contain \":\"")
    end
  end

  local repository_body, message = translate(repository, pattern)
  if not repository_body then
    return nil, message
  end
  local tag_body = ".*"
  if tag ~= nil then
    tag_body, message = translate(tag, pattern)
    if not tag_body then
      return nil, message
    end
  end
  local lua_pattern = "^" .. repository_body .. ":" .. tag_body .. "$"
  return {
    pattern = pattern,
    matches = function(image)
      local name = tostring(image.repository or "") .. ":" .. tostring(image.tag or "")
      return name:find(lua_pattern) ~= nil
    end,
  }
end

--- Compiles a list of patterns (or one pattern). Returns the matchers, or nil
-- and the message of the first invalid one.
function M.compile_all(patterns, rule)
  if patterns == nil then
    return nil
  end
  if type(patterns) == "string" then
    patterns = { patterns }
  end
  if type(patterns) ~= "table" then
    return nil, string.format("%s must be a pattern or a list of patterns, got %s", rule, type(patterns))
  end
  local matchers = {}
  for _, pattern in ipairs(patterns) do
    local matcher, message = M.compile(pattern)
    if not matcher then
      return nil, rule .. ": " .. message
    end
    matchers[#matchers + 1] = matcher
  end
  return matchers
end

--- Returns the first matcher of matchers that matches image, or nil. When
-- hits is a table, every matching pattern is recorded in it.
function M.first_match(matchers, image, hits)
  local first
  for _, matcher in ipairs(matchers) do
    if matcher.matches(image) then
      if not hits then
        return matcher
      end
      hits[matcher.pattern] = true
      first = first or matcher
    end
  end
  return first
end

return M
