--- Parse and validate docker image references (`name[:tag][@digest]`).
--
-- The grammar is docker's, as written in the distribution/reference
-- repository (files regexp.go, reference.go and normalize.go):
--
--   reference        := name [ ":" tag ] [ "@" digest ]
--   name             := [ domain "/" ] path-component [ "/" path-component ]*
--   domain           := host [ ":" port ]          port := [0-9]+
--   host             := domain-component [ "." domain-component ]*
--                     | "[" [a-fA-F0-9:]+ "]"     (IPv6 address)
--   domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
--   path-component   := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
--   tag              := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
--   digest           := algorithm ":" [a-fA-F0-9]{32,}
--   algorithm        := [A-Za-z][A-Za-z0-9]* ( [-_+.] [A-Za-z][A-Za-z0-9]* )*
--
-- The first component of a name is the domain only when a "/" follows it and
-- it contains "." or ":" or is exactly "localhost", as splitDockerDomain in
-- normalize.go decides. A name is at most 255 characters, domain included.
-- The encoded part of a sha256, sha384 or sha512 digest must be exactly 64, 96
-- or 128 lowercase hex characters, as the opencontainers/go-digest file
-- algorithm.go requires.
--
-- Names are not normalised: "nginx" stays "nginx" and never becomes
-- "docker.io/library/nginx:latest", because the NAS stores repositories as
-- the user typed them.
--
-- API:
--
--   reference.parse(s [, options]) --> ref | nil, message
--     ref.domain      "ghcr.io", or nil when the name has no domain
--     ref.path        "home-assistant/home-assistant"
--     ref.repository  "ghcr.io/home-assistant/home-assistant" (the name
--                     without tag and digest, domain included)
--     ref.tag         "2024.6", or nil
--     ref.digest      "sha256:<64 hex>", or nil
--     options.default_tag  tag given to a reference that has neither a tag
--                          nor a digest (for example "latest")
--   reference.valid_repository(s) --> true | nil, message
--   reference.valid_tag(s)        --> true | nil, message
--   reference.format(ref)         --> "repository[:tag][@digest]" | nil, message
--
-- An invalid value returns nil and a one-line message that quotes the whole
-- input and then, when it is only part of the input, the bad part:
--   invalid reference "Nginx:1.25": repository name must be lowercase ("Nginx")
-- An argument of the wrong type returns nil and a message naming its type:
--   reference must be a string, got nil

local reference = {}

local MAX_NAME_LENGTH = 255
local MAX_TAG_LENGTH = 128
local MIN_DIGEST_HEX_LENGTH = 32

-- Encoded lengths that go-digest enforces for the algorithms it registers.
-- Each of them also requires lowercase hex.
local DIGEST_HEX_LENGTHS = { sha256 = 64, sha384 = 96, sha512 = 128 }

-- `docker images` prints this placeholder for a missing repository, tag or digest.
local NONE_PLACEHOLDER = "<none>"

-- Quotes s like %q but writes a newline as \n, so a message stays on one line.
local function quote(s)
  return (string.format("%q", s):gsub("\\\n", "\\n"))
end

-- Builds the failure result: nil and `invalid KIND "input": problem ("part")`.
-- The part is left out when it is nil or the whole input.
local function failure(kind, input, problem, part)
  local message = string.format("invalid %s %s: %s", kind, quote(input), problem)
  if part ~= nil and part ~= input then
    message = message .. " (" .. quote(part) .. ")"
  end
  return nil, message
end

-- Returns the whole UTF-8 character at byte position i, so that a message
-- never shows half of a multibyte character.
local function character_at(s, i)
  return s:match("^" .. utf8.charpattern, i) or s:sub(i, i)
end

-- NOTE: splitDockerDomain also takes an uppercase first component such as
-- "Foo/bar" as a domain. Here it stays a path component and fails as not lowercase.
local function is_domain(component)
  return component == "localhost" or component:find("[.:]") ~= nil
end

-- Returns the byte position after the "]" of a leading IPv6 address, or 1.
-- Separators are searched from there, because ":" is part of the address.
local function skip_ipv6_address(s)
  if s:sub(1, 1) ~= "[" then
    return 1
  end
  local close = s:find("]", 2, true)
  return close and close + 1 or 1
end

-- Splits "name[:tag]" into name and tag. The tag starts at the first ":"
-- after the domain, because a domain may contain ":" but a path never does.
-- tag is nil when there is no ":" and "" when nothing follows it.
local function split_tag(name_and_tag)
  local search_from = skip_ipv6_address(name_and_tag)
  local slash = name_and_tag:find("/", 1, true)
  if slash and is_domain(name_and_tag:sub(1, slash - 1)) then
    search_from = slash + 1
  end

  local colon = name_and_tag:find(":", search_from, true)
  if not colon then
    return name_and_tag, nil
  end
  return name_and_tag:sub(1, colon - 1), name_and_tag:sub(colon + 1)
end

-- Checks "host[:port]". Returns nil when valid, otherwise problem, part.
local function check_domain(domain)
  local host, port

  if domain:sub(1, 1) == "[" then
    local close = domain:find("]", 2, true)
    if not close then
      return 'IPv6 address must end with "]"', domain
    end
    host = domain:sub(1, close)

    local after_host = domain:sub(close + 1)
    if after_host ~= "" then
      if after_host:sub(1, 1) ~= ":" then
        return 'IPv6 address must be followed by ":" and a port or by "/"', domain
      end
      port = after_host:sub(2)
    end

    local address = host:sub(2, -2)
    if address == "" or address:find("[^a-fA-F0-9:]") then
      -- This also rejects zone identifiers such as "%eth0", as docker does.
      return 'IPv6 address must contain only hex digits and ":"', host
    end
  else
    local colon = domain:find(":", 1, true)
    if colon then
      host = domain:sub(1, colon - 1)
      port = domain:sub(colon + 1)
    else
      host = domain
    end
    if host == "" then
      return "missing domain name before the port", domain
    end

    for component in (host .. "."):gmatch("(.-)%.") do
      if component == "" then
        return "domain must not have an empty component", host
      end
      local bad = component:find("[^a-zA-Z0-9-]")
      if bad then
        return string.format("invalid character %s in domain", quote(character_at(component, bad))), host
      end
      if component:sub(1, 1) == "-" or component:sub(-1) == "-" then
        return 'domain component must not start or end with "-"', component
      end
    end
  end

  if port ~= nil then
    if port == "" then
      return 'missing port after ":"', domain
    end
    if port:find("[^0-9]") then
      return "port must be a number", port
    end
  end
  return nil
end

-- Checks one path component with a scanner, because Lua patterns have no
-- alternation for the separators "." | "_" | "__" | "-"+.
-- Returns nil when valid, otherwise problem, part.
local function check_path_component(component)
  if component:find("^[a-z0-9]+$") then
    return nil  -- the common case, valid without the scan below
  end
  local bad = component:find("[^a-zA-Z0-9._-]")
  if bad then
    return string.format("invalid character %s in repository name", quote(character_at(component, bad))), component
  end
  if component:find("[A-Z]") then
    return "repository name must be lowercase", component
  end
  if not component:sub(1, 1):find("[a-z0-9]") then
    return "path component must start with a lowercase letter or digit", component
  end
  if not component:sub(-1):find("[a-z0-9]") then
    return "path component must end with a lowercase letter or digit", component
  end

  -- Only [a-z0-9] runs and separator runs remain, and both ends are
  -- alphanumeric, so checking each separator run completes the grammar.
  for separator in component:gmatch("[._-]+") do
    local allowed = separator == "." or separator == "_" or separator == "__"
      or separator:find("^%-+$") ~= nil
    if not allowed then
      return string.format(
        'separator in path component must be ".", "_", "__" or one or more "-", got %s',
        quote(separator)), component
    end
  end
  return nil
end

-- Checks a name without tag or digest. Returns a table with domain (nil when
-- the name has none) and path when valid, otherwise nil, problem, part.
local function check_name(name)
  if #name <= MAX_NAME_LENGTH and name:find("^[a-z0-9]+$") then
    return { path = name }  -- one plain path component, such as "nginx"
  end
  if name == "" then
    return nil, "missing repository name"
  end
  if name:sub(1, 1) == "/" then
    return nil, 'repository name must not start with "/"', name
  end
  if name:sub(-1) == "/" then
    return nil, 'repository name must not end with "/"', name
  end
  if name:find("//", 1, true) then
    return nil, 'repository name must not contain "//"', name
  end

  local domain, path
  local slash = name:find("/", 1, true)
  if slash and is_domain(name:sub(1, slash - 1)) then
    domain = name:sub(1, slash - 1)
    path = name:sub(slash + 1)
  else
    path = name
  end

  if not domain and path:sub(1, 1) == "[" then
    if not path:find("]", 2, true) then
      return nil, 'IPv6 address must end with "]"'
    end
    return nil, 'IPv6 address must be followed by "/" and a repository path'
  end

  if domain then
    local problem, part = check_domain(domain)
    if problem then
      return nil, problem, part
    end
  end

  for component in path:gmatch("[^/]+") do
    local problem, part = check_path_component(component)
    if problem then
      return nil, problem, part
    end
  end

  if #name > MAX_NAME_LENGTH then
    return nil, string.format("repository name must be at most %d characters, got %d",
      MAX_NAME_LENGTH, #name)
  end
  return { domain = domain, path = path }
end

-- Checks a non-empty tag. Returns nil when valid, otherwise problem, part.
local function check_tag(tag)
  if #tag <= MAX_TAG_LENGTH and tag:find("^[A-Za-z0-9_][A-Za-z0-9_.-]*$") then
    return nil  -- the whole tag grammar; the checks below find the problem
  end
  if not tag:sub(1, 1):find("[A-Za-z0-9_]") then
    return "tag must start with a letter, digit or underscore", tag
  end
  local bad = tag:find("[^A-Za-z0-9_.-]")
  if bad then
    return string.format("invalid character %s in tag", quote(character_at(tag, bad))), tag
  end
  if #tag > MAX_TAG_LENGTH then
    return string.format("tag must be at most %d characters, got %d", MAX_TAG_LENGTH, #tag)
  end
  return nil
end

local function is_valid_algorithm(algorithm)
  local position = 1
  while true do
    local _, last = algorithm:find("^[A-Za-z][A-Za-z0-9]*", position)
    if not last then
      return false
    end
    position = last + 1
    if position > #algorithm then
      return true
    end
    if not algorithm:sub(position, position):find("[-_+.]") then
      return false
    end
    position = position + 1
  end
end

-- Checks a non-empty "algorithm:hex" digest.
-- Returns nil when valid, otherwise problem, part.
local function check_digest(digest)
  local colon = digest:find(":", 1, true)
  if not colon then
    return 'digest must have the form algorithm:hex, for example "sha256:" and 64 hex characters', digest
  end

  local algorithm = digest:sub(1, colon - 1)
  local encoded = digest:sub(colon + 1)
  if algorithm == "" then
    return 'missing digest algorithm before ":"', digest
  end
  if not is_valid_algorithm(algorithm) then
    return "invalid digest algorithm", algorithm
  end
  if encoded == "" then
    return string.format("missing hex characters after %s", quote(algorithm .. ":"))
  end

  local expected_length = DIGEST_HEX_LENGTHS[algorithm]
  if expected_length then
    if #encoded ~= expected_length or encoded:find("[^a-fA-F0-9]") then
      return string.format("%s digest must be %d hex characters", algorithm, expected_length), encoded
    end
    if encoded:find("[A-F]") then
      return string.format("%s digest must be lowercase hex", algorithm), encoded
    end
    return nil
  end

  -- NOTE: the docker engine also rejects algorithms that go-digest does not
  -- register (it registers sha256, sha384 and sha512). This module accepts any
  -- algorithm that fits the grammar, because that is all the grammar defines.
  if encoded:find("[^a-fA-F0-9]") then
    return "digest must contain only hex characters", encoded
  end
  if #encoded < MIN_DIGEST_HEX_LENGTH then
    return string.format("digest must have at least %d hex characters", MIN_DIGEST_HEX_LENGTH), encoded
  end
  return nil
end

-- The default tag that last passed valid_tag, so that a caller passing the
-- same default tag on every call has it checked only once.
local last_valid_default_tag = nil

--- Parses an image reference `name[:tag][@digest]` without normalising it.
-- @param s the reference string
-- @param options optional table with field default_tag, the tag given to a
--   reference that has neither a tag nor a digest
-- @return a table with domain, path, repository, tag and digest, or nil and
--   a one-line message
function reference.parse(s, options)
  if type(s) ~= "string" then
    return nil, "reference must be a string, got " .. type(s)
  end
  if options ~= nil and type(options) ~= "table" then
    return nil, "options must be a table, got " .. type(options)
  end
  local default_tag = options and options.default_tag
  if default_tag ~= nil and default_tag ~= last_valid_default_tag then
    local ok, message = reference.valid_tag(default_tag)
    if not ok then
      return nil, "invalid default_tag: " .. message
    end
    last_valid_default_tag = default_tag
  end

  -- Fast path for the most common form, a one-component name with an optional
  -- tag ("nginx", "redis:7.2"), which the general checks below accept too.
  local simple_name, simple_tag = s:match("^([a-z0-9]+):([A-Za-z0-9_][A-Za-z0-9_.-]*)$")
  if not simple_name and s:find("^[a-z0-9]+$") then
    simple_name = s
  end
  if simple_name and #simple_name <= MAX_NAME_LENGTH
      and (simple_tag == nil or #simple_tag <= MAX_TAG_LENGTH) then
    return { path = simple_name, repository = simple_name, tag = simple_tag or default_tag }
  end

  if s == "" then
    return failure("reference", s, "empty")
  end
  if s:find("%s") then
    return failure("reference", s, "must not contain whitespace")
  end

  local name_and_tag, digest = s, nil
  local at = s:find("@", skip_ipv6_address(s), true)
  if at then
    name_and_tag = s:sub(1, at - 1)
    digest = s:sub(at + 1)
  end
  local name, tag = split_tag(name_and_tag)

  if name == NONE_PLACEHOLDER then
    return failure("reference", s,
      "dangling images have no reference and must be addressed by image id")
  end
  if tag == NONE_PLACEHOLDER then
    return failure("reference", s,
      'tag "<none>" marks an untagged image, so address it by digest or image id')
  end
  if digest == NONE_PLACEHOLDER then
    return failure("reference", s,
      'digest "<none>" marks an image without a repository digest, so address it by tag or image id')
  end

  local parts, problem, part = check_name(name)
  if not parts then
    return failure("reference", s, problem, part)
  end

  if tag == "" then
    return failure("reference", s, 'missing tag after ":"')
  end
  if tag then
    problem, part = check_tag(tag)
    if problem then
      return failure("reference", s, problem, part)
    end
  end

  if digest == "" then
    return failure("reference", s, 'missing digest after "@"')
  end
  if digest then
    problem, part = check_digest(digest)
    if problem then
      return failure("reference", s, problem, part)
    end
  end

  if tag == nil and digest == nil then
    tag = default_tag
  end
  return {
    domain = parts.domain,
    path = parts.path,
    repository = name,
    tag = tag,
    digest = digest,
  }
end

--- Checks a repository name, which must have no tag and no digest.
-- @return true, or nil and a one-line message
function reference.valid_repository(s)
  if type(s) ~= "string" then
    return nil, "repository must be a string, got " .. type(s)
  end
  if s == "" then
    return failure("repository", s, "empty")
  end
  if s:find("%s") then
    return failure("repository", s, "must not contain whitespace")
  end
  if s:find("@", 1, true) then
    return failure("repository", s, "must not include a digest")
  end
  local _, tag = split_tag(s)
  if tag then
    return failure("repository", s, "must not include a tag")
  end

  local parts, problem, part = check_name(s)
  if not parts then
    return failure("repository", s, problem, part)
  end
  return true
end

--- Checks a tag such as "latest" or "1.25-alpine".
-- @return true, or nil and a one-line message
function reference.valid_tag(s)
  if type(s) ~= "string" then
    return nil, "tag must be a string, got " .. type(s)
  end
  if s == "" then
    return failure("tag", s, "empty")
  end
  local problem, part = check_tag(s)
  if problem then
    return failure("tag", s, problem, part)
  end
  return true
end

--- Formats a reference table as "repository[:tag][@digest]".
-- Uses ref.repository, or ref.domain and ref.path when repository is nil,
-- and validates every part, so the result always parses again.
-- @return the reference string, or nil and a one-line message
function reference.format(ref)
  if type(ref) ~= "table" then
    return nil, "reference must be a table, got " .. type(ref)
  end

  local repository = ref.repository
  if repository == nil and type(ref.path) == "string" then
    if ref.domain ~= nil then
      if type(ref.domain) ~= "string" then
        return nil, "domain must be a string, got " .. type(ref.domain)
      end
      repository = ref.domain .. "/" .. ref.path
    else
      repository = ref.path
    end
  end
  if repository == nil then
    return nil, "reference table must have a repository or a path"
  end
  local ok, message = reference.valid_repository(repository)
  if not ok then
    return nil, message
  end

  local result = repository
  if ref.tag ~= nil then
    ok, message = reference.valid_tag(ref.tag)
    if not ok then
      return nil, message
    end
    result = result .. ":" .. ref.tag
  end

  if ref.digest ~= nil then
    if type(ref.digest) ~= "string" then
      return nil, "digest must be a string, got " .. type(ref.digest)
    end
    if ref.digest == "" then
      return failure("digest", ref.digest, "empty")
    end
    local problem, part = check_digest(ref.digest)
    if problem then
      return failure("digest", ref.digest, problem, part)
    end
    result = result .. "@" .. ref.digest
  end
  return result
end

return reference
