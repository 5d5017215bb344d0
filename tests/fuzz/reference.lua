-- Fuzz driver for syno.reference: parse, valid_repository, valid_tag and
-- format on arbitrary bytes. None of them may raise; every rejection is one
-- line; every accepted reference formats to a string that parses back to the
-- same parts.
--
-- The input is the reference string. When it contains NUL bytes, the parts
-- between them are also given to reference.format as repository, tag and
-- digest.

local reference = require "syno.reference"

local function check(condition, message, input)
  if not condition then
    error(string.format("%s, input %q", message, input), 0)
  end
end

-- Checks the (nil, message) result of a rejection.
local function check_rejection(message, input, what)
  check(type(message) == "string", what .. " returned nil without a message", input)
  check(not message:find("\n", 1, true), what .. " returned a message of several lines", input)
end

local function same_parts(a, b)
  return a.domain == b.domain and a.path == b.path and a.repository == b.repository
    and a.tag == b.tag and a.digest == b.digest
end

-- Checks an accepted reference: its parts agree, and it formats and parses back.
local function check_accepted(ref, input)
  local expected_repository = ref.domain and (ref.domain .. "/" .. ref.path) or ref.path
  check(ref.repository == expected_repository, "repository differs from domain/path", input)
  check(#ref.repository <= 255, "accepted a repository longer than 255 characters", input)
  check(reference.valid_repository(ref.repository), "parse accepted a repository that valid_repository rejects", input)
  if ref.tag then
    check(reference.valid_tag(ref.tag), "parse accepted a tag that valid_tag rejects", input)
  end

  local text, message = reference.format(ref)
  check(text ~= nil, "format rejected a parsed reference: " .. tostring(message), input)
  local again = reference.parse(text)
  check(again ~= nil and same_parts(ref, again), "format output does not parse back to the same parts", input)
end

local function fuzz_parse(input)
  local ref, message = reference.parse(input)
  if ref then
    check_accepted(ref, input)
  else
    check_rejection(message, input, "parse")
  end

  local with_default, default_message = reference.parse(input, { default_tag = "latest" })
  check((ref ~= nil) == (with_default ~= nil), "default_tag changed whether the input parses", input)
  if with_default then
    local expected_tag = ref.tag or (ref.digest == nil and "latest" or nil)
    check(with_default.tag == expected_tag, "default_tag was not applied as documented", input)
  else
    check_rejection(default_message, input, "parse with default_tag")
  end
end

local function fuzz_validators(input)
  local repository_ok, repository_message = reference.valid_repository(input)
  if repository_ok then
    local ref = reference.parse(input)
    check(ref ~= nil and ref.repository == input and ref.tag == nil and ref.digest == nil,
      "valid_repository accepted what parse does not read as a bare repository", input)
  else
    check_rejection(repository_message, input, "valid_repository")
  end

  local tag_ok, tag_message = reference.valid_tag(input)
  if tag_ok then
    check(#input <= 128, "valid_tag accepted a tag longer than 128 characters", input)
  else
    check_rejection(tag_message, input, "valid_tag")
  end
end

local function fuzz_format(input)
  if not input:find("\0", 1, true) then
    return
  end
  local parts = {}
  for part in (input .. "\0"):gmatch("(.-)%z") do
    parts[#parts + 1] = part ~= "" and part or nil
  end
  local ref = { repository = parts[1], tag = parts[2], digest = parts[3] }
  local text, message = reference.format(ref)
  if not text then
    check_rejection(message, input, "format")
    return
  end
  local parsed = reference.parse(text)
  check(parsed ~= nil, "format returned a string that does not parse", input)
  check(parsed.repository == ref.repository and parsed.tag == ref.tag and parsed.digest == ref.digest,
    "format output parses to other parts", input)
end

return function(input)
  fuzz_parse(input)
  fuzz_validators(input)
  fuzz_format(input)
end
