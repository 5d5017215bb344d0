-- Tests for syno.reference, written as tables of cases with one `it` per row.
--
-- Rows marked "docker:" come from the distribution/reference repository, files
-- reference_test.go (TestReferenceParse, TestDomainAndPath, TestSerialization)
-- and regexp_test.go (TestDomainRegexp, TestFullNameRegexp,
-- TestReferenceRegexp). Domain cases from TestDomainRegexp are tested as
-- "<domain>/app", because this module has no separate domain check.

local reference = require "syno.reference"

local HEX64_F = string.rep("f", 64)
local SHA256_F = "sha256:" .. HEX64_F
local SHA256_BE = "sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912"
local SHA256_SERIAL = "sha256:1234567890098765432112345667890098765432112345667890098765432112"
local SHA512_F = "sha512:" .. string.rep("f", 128)
local ALPINE_DIGEST = "sha256:c5b1261d6d3e43071626931fc004f70149baeba2c8ec672bd4f27761f8e1ad6b"

-- Returns a short, one-line test name for an input of any length.
local function label(s)
  local display = s
  if #s > 48 then
    display = s:sub(1, 40)
  end
  display = string.format("%q", display):gsub("\\\n", "\\n")
  if #s > 48 then
    display = display .. string.format("... (%d chars)", #s)
  end
  return display
end

-- Quotes like the module does, so a test can build the expected message start.
local function quote(s)
  return (string.format("%q", s):gsub("\\\n", "\\n"))
end

-- Valid references: { input, domain = ..., path = ..., tag = ..., digest = ... }.
-- A missing field means the parsed field must be nil.
local valid_cases = {
  -- docker: TestReferenceParse
  { "test_com", path = "test_com" },
  { "test.com:tag", path = "test.com", tag = "tag" },
  { "test.com:5000", path = "test.com", tag = "5000" },
  { "test.com/repo:tag", domain = "test.com", path = "repo", tag = "tag" },
  { "test:5000/repo", domain = "test:5000", path = "repo" },
  { "test:5000/repo:tag", domain = "test:5000", path = "repo", tag = "tag" },
  { "test:5000/repo@" .. SHA256_F, domain = "test:5000", path = "repo", digest = SHA256_F },
  { "test:5000/repo:tag@" .. SHA256_F, domain = "test:5000", path = "repo", tag = "tag", digest = SHA256_F },
  { "lowercase:Uppercase", path = "lowercase", tag = "Uppercase" },
  { "sub-dom1.foo.com/bar/baz/quux", domain = "sub-dom1.foo.com", path = "bar/baz/quux" },
  { "sub-dom1.foo.com/bar/baz/quux:some-long-tag", domain = "sub-dom1.foo.com", path = "bar/baz/quux",
    tag = "some-long-tag" },
  { "b.gcr.io/test.example.com/my-app:test.example.com", domain = "b.gcr.io", path = "test.example.com/my-app",
    tag = "test.example.com" },
  { "xn--n3h.com/myimage:xn--n3h.com", domain = "xn--n3h.com", path = "myimage", tag = "xn--n3h.com" },
  { "xn--7o8h.com/myimage:xn--7o8h.com@" .. SHA512_F, domain = "xn--7o8h.com", path = "myimage",
    tag = "xn--7o8h.com", digest = SHA512_F },
  { "foo_bar.com:8080", path = "foo_bar.com", tag = "8080" },
  { "192.168.1.1", path = "192.168.1.1" },
  { "192.168.1.1:tag", path = "192.168.1.1", tag = "tag" },
  { "192.168.1.1:5000", path = "192.168.1.1", tag = "5000" },
  { "192.168.1.1/repo", domain = "192.168.1.1", path = "repo" },
  { "192.168.1.1:5000/repo", domain = "192.168.1.1:5000", path = "repo" },
  { "192.168.1.1:5000/repo:5050", domain = "192.168.1.1:5000", path = "repo", tag = "5050" },
  { "[2001:db8::1]/repo", domain = "[2001:db8::1]", path = "repo" },
  { "[2001:db8:1:2:3:4:5:6]/repo:tag", domain = "[2001:db8:1:2:3:4:5:6]", path = "repo", tag = "tag" },
  { "[2001:db8::1]:5000/repo", domain = "[2001:db8::1]:5000", path = "repo" },
  { "[2001:db8::1]:5000/repo:tag", domain = "[2001:db8::1]:5000", path = "repo", tag = "tag" },
  { "[2001:db8::1]:5000/repo@" .. SHA256_F, domain = "[2001:db8::1]:5000", path = "repo", digest = SHA256_F },
  { "[2001:db8::1]:5000/repo:tag@" .. SHA256_F, domain = "[2001:db8::1]:5000", path = "repo", tag = "tag",
    digest = SHA256_F },
  { "[2001:db8::]:5000/repo", domain = "[2001:db8::]:5000", path = "repo" },
  { "[::1]:5000/repo", domain = "[::1]:5000", path = "repo" },

  -- docker: TestDomainAndPath
  { "test.com/foo", domain = "test.com", path = "foo" },
  { "test_com/foo", path = "test_com/foo" },
  { "test:8080/foo", domain = "test:8080", path = "foo" },
  { "test.com:8080/foo", domain = "test.com:8080", path = "foo" },
  { "test-com:8080/foo", domain = "test-com:8080", path = "foo" },
  { "xn--n3h.com:18080/foo", domain = "xn--n3h.com:18080", path = "foo" },

  -- docker: TestSerialization
  { "example.com:8000/named", domain = "example.com:8000", path = "named" },
  { "example.com:8000/named:tagged", domain = "example.com:8000", path = "named", tag = "tagged" },
  { "other.com/named@" .. SHA256_SERIAL, domain = "other.com", path = "named", digest = SHA256_SERIAL },

  -- docker: TestDomainRegexp, as "<domain>/app"
  { "test.com:10304/app", domain = "test.com:10304", path = "app" },
  { "localhost/app", domain = "localhost", path = "app" },
  { "localhost:8080/app", domain = "localhost:8080", path = "app" },
  { "a.b/app", domain = "a.b", path = "app" },
  { "ab.cd.com/app", domain = "ab.cd.com", path = "app" },
  { "a-b.com/app", domain = "a-b.com", path = "app" },
  { "ab.c-om/app", domain = "ab.c-om", path = "app" },
  { "0101.com/app", domain = "0101.com", path = "app" },
  { "001a.com/app", domain = "001a.com", path = "app" },
  { "b.gbc.io:443/app", domain = "b.gbc.io:443", path = "app" },
  { "Asdf.com/app", domain = "Asdf.com", path = "app" },
  -- The grammar limits a port to digits but not to 65535, and docker's domain regexp accepts these too.
  { "192.168.1.1:75050/app", domain = "192.168.1.1:75050", path = "app" },
  { "[fd00:1:2::3]:75050/app", domain = "[fd00:1:2::3]:75050", path = "app" },
  { "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050/app", domain = "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050",
    path = "app" },

  -- docker: TestFullNameRegexp
  { "short", path = "short" },
  { "simple/name", path = "simple/name" },
  { "library/ubuntu", path = "library/ubuntu" },
  { "docker/stevvooe/app", path = "docker/stevvooe/app" },
  { "aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb", path = "aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb" },
  { "a/a/a/a", path = "a/a/a/a" },
  { "a", path = "a" },
  { "foo.com", path = "foo.com" },
  { "foo.com:8080/bar", domain = "foo.com:8080", path = "bar" },
  { "foo.com/bar/baz", domain = "foo.com", path = "bar/baz" },
  { "blog.foo.com/bar/baz", domain = "blog.foo.com", path = "bar/baz" },
  { "aa-a/a", path = "aa-a/a" },
  { "foo_bar", path = "foo_bar" },
  { "foo.com/foo_bar", domain = "foo.com", path = "foo_bar" },
  { "example.com/xn--7o8h.com/myimage", domain = "example.com", path = "xn--7o8h.com/myimage" },
  { "example.com/some_separator__underscore/myimage", domain = "example.com",
    path = "some_separator__underscore/myimage" },
  { "do__cker/docker", path = "do__cker/docker" },
  { "registry.io/foo/project--id.module--name.ver---sion--name", domain = "registry.io",
    path = "foo/project--id.module--name.ver---sion--name" },
  { "Asdf.com/foo/bar", domain = "Asdf.com", path = "foo/bar" },

  -- docker: TestReferenceRegexp
  { "registry.com:8080/myapp:tag", domain = "registry.com:8080", path = "myapp", tag = "tag" },
  { "registry.com:8080/myapp@" .. SHA256_BE, domain = "registry.com:8080", path = "myapp", digest = SHA256_BE },
  { "registry.com:8080/myapp:tag2@" .. SHA256_BE, domain = "registry.com:8080", path = "myapp", tag = "tag2",
    digest = SHA256_BE },
  -- Without a "/", "localhost" is the repository and "8080" its tag.
  { "localhost:8080@" .. SHA256_BE, path = "localhost", tag = "8080", digest = SHA256_BE },
  { "localhost:8080/name@" .. SHA256_BE, domain = "localhost:8080", path = "name", digest = SHA256_BE },
  { "localhost@" .. SHA256_BE, path = "localhost", digest = SHA256_BE },

  -- Cases where docker's Parse disagrees, because its regexp takes any first
  -- component that fits the domain grammar as the domain (it reports domain
  -- "a" and "foo" here). This module splits like splitDockerDomain in
  -- normalize.go, which needs a ".", a ":" or "localhost" in that component.
  { string.rep("a/", 127) .. "a:tag-puts-this-over-max", path = string.rep("a/", 127) .. "a",
    tag = "tag-puts-this-over-max" },
  { "foo/foo_bar.com:8080", path = "foo/foo_bar.com", tag = "8080" },
  -- docker's Parse rejects this with "unsupported digest algorithm" because
  -- go-digest registers no such algorithm. The grammar accepts it.
  { "validname@invaliddigest:" .. HEX64_F, path = "validname", digest = "invaliddigest:" .. HEX64_F },

  -- synosh: names as users type them on the NAS
  { "ghcr.io/home-assistant/home-assistant:2024.6", domain = "ghcr.io", path = "home-assistant/home-assistant",
    tag = "2024.6" },
  { "localhost:5000/team/app:1.0", domain = "localhost:5000", path = "team/app", tag = "1.0" },
  { "registry.lan:5000/team/app:1.0", domain = "registry.lan:5000", path = "team/app", tag = "1.0" },
  { "alpine@" .. ALPINE_DIGEST, path = "alpine", digest = ALPINE_DIGEST },
  { "lscr.io/linuxserver/sonarr:latest", domain = "lscr.io", path = "linuxserver/sonarr", tag = "latest" },
  { "nginx", path = "nginx" },
  { "nginx:1.25-alpine", path = "nginx", tag = "1.25-alpine" },
  { "foo__bar", path = "foo__bar" },
  { "foo--bar", path = "foo--bar" },
  { "foo---bar.baz_qux", path = "foo---bar.baz_qux" },
  { "[::1]:5000/app:1", domain = "[::1]:5000", path = "app", tag = "1" },
  { "localhost", path = "localhost" },
  -- A ":" before the first "/" makes the first component a domain, so "1" is a port and not a tag.
  { "nginx:1/2", domain = "nginx:1", path = "2" },
  { "nginx:_private", path = "nginx", tag = "_private" },
  { "nginx:" .. string.rep("t", 128), path = "nginx", tag = string.rep("t", 128) },
  { string.rep("a", 255), path = string.rep("a", 255) },
  { "registry.lan/" .. string.rep("a", 242), domain = "registry.lan", path = string.rep("a", 242) },
  { "app@sha384:" .. string.rep("0", 96), path = "app", digest = "sha384:" .. string.rep("0", 96) },
  { "app@sha256+b64u.v2:" .. string.rep("A", 32), path = "app", digest = "sha256+b64u.v2:" .. string.rep("A", 32) },
}

-- Invalid references: { input, fragment of the expected message }.
local invalid_cases = {
  -- docker: TestReferenceParse
  { "", "empty" },
  { ":justtag", "missing repository name" },
  { "@" .. SHA256_F, "missing repository name" },
  { "repo@sha256:" .. string.rep("f", 34), "sha256 digest must be 64 hex characters" },
  { "Uppercase:tag", 'repository name must be lowercase ("Uppercase")' },
  { "test:5000/Uppercase/lowercase:tag", 'repository name must be lowercase ("Uppercase")' },
  { string.rep("a/", 128) .. "a:tag", "repository name must be at most 255 characters, got 257" },
  { "aa/asdf$$^/aa", 'invalid character "$" in repository name ("asdf$$^")' },
  { "[2001:db8::1]", 'IPv6 address must be followed by "/"' },
  { "[2001:db8::1]:5000", 'IPv6 address must be followed by "/"' },
  { "[2001:db8::1]:tag", 'IPv6 address must be followed by "/"' },
  { "[fe80::1%eth0]:5000/repo", 'IPv6 address must contain only hex digits and ":" ("[fe80::1%eth0]")' },
  { "[fe80::1%@invalidzone]:5000/repo", 'IPv6 address must contain only hex digits and ":"' },
  -- docker's WithDigest accepts this 37-digit sha256 because it checks only the
  -- digest regexp, but its Parse rejects it, as here.
  { "test.com/foo@sha256:1234567890098765432112345667890098765", "sha256 digest must be 64 hex characters" },

  -- docker: TestDomainRegexp, as "<domain>/app"
  { "test.com:http/app", 'port must be a number ("http")' },
  { "-ab.com/app", 'domain component must not start or end with "-" ("-ab")' },
  { "ab-.com/app", 'domain component must not start or end with "-" ("ab-")' },
  { "ab.-com/app", 'domain component must not start or end with "-" ("-com")' },
  { "ab.com-/app", 'domain component must not start or end with "-" ("com-")' },
  { "[fd00:1:2::3]75050/app", 'IPv6 address must be followed by ":" and a port or by "/"' },
  { "[fd00:1:2::3]::75050/app", 'port must be a number (":75050")' },
  { "[fd00:1:2::3%eth0]:75050/app", 'IPv6 address must contain only hex digits and ":"' },
  { "fd00:1:2::3:75050/app", 'port must be a number ("1:2::3:75050")' },

  -- docker: TestFullNameRegexp
  { "a/a/a/a/", 'repository name must not end with "/"' },
  { "a//a/a", 'repository name must not contain "//"' },
  { "foo.com/", 'repository name must not end with "/"' },
  { "foo.com:http/bar", 'port must be a number ("http")' },
  { "a^a", 'invalid character "^" in repository name' },
  { "asdf$$^/aa", 'invalid character "$" in repository name ("asdf$$^")' },
  { "a-/a/a/a", 'path component must end with a lowercase letter or digit ("a-")' },
  { "foo.com/a-/a/a", 'path component must end with a lowercase letter or digit ("a-")' },
  { "-foo/bar", 'path component must start with a lowercase letter or digit ("-foo")' },
  { "foo/bar-", 'path component must end with a lowercase letter or digit ("bar-")' },
  { "foo-/bar", 'path component must end with a lowercase letter or digit ("foo-")' },
  { "foo/-bar", 'path component must start with a lowercase letter or digit ("-bar")' },
  { "_foo/bar", 'path component must start with a lowercase letter or digit ("_foo")' },
  { "foo_bar.com:8080/app", 'invalid character "_" in domain ("foo_bar.com")' },
  { "____/____", 'path component must start with a lowercase letter or digit ("____")' },
  { "_docker/_docker", 'path component must start with a lowercase letter or digit ("_docker")' },
  { "docker_/docker_", 'path component must end with a lowercase letter or digit ("docker_")' },
  { "example.com/__underscore/myimage", "path component must start with a lowercase letter or digit" },
  { "example.com/..dots/myimage", "path component must start with a lowercase letter or digit" },
  { "example.com/.dots/myimage", "path component must start with a lowercase letter or digit" },
  { "example.com/nodouble..dots/myimage", 'got ".." ("nodouble..dots")' },
  { "docker./docker", 'domain must not have an empty component ("docker.")' },
  { ".docker/docker", 'domain must not have an empty component (".docker")' },
  { "docker-/docker", 'path component must end with a lowercase letter or digit ("docker-")' },
  { "-docker/docker", 'path component must start with a lowercase letter or digit ("-docker")' },
  { "do..cker/docker", 'domain must not have an empty component ("do..cker")' },
  { "do__cker:8080/docker", 'invalid character "_" in domain ("do__cker")' },
  { "Foo/FarB", 'repository name must be lowercase ("Foo")' },

  -- docker: TestReferenceRegexp
  { "registry.com:8080/myapp@sha256:badbadbadbad", 'sha256 digest must be 64 hex characters ("badbadbadbad")' },
  { "registry.com:8080/myapp:invalid~tag", 'invalid character "~" in tag ("invalid~tag")' },
  { "bad_hostname.com:8080/myapp:tag", 'invalid character "_" in domain ("bad_hostname.com")' },
  { "localhost:http/name@" .. SHA256_BE, 'port must be a number ("http")' },
  { "registry.com:8080/myapp@bad", 'digest must have the form algorithm:hex' },
  { "registry.com:8080/myapp@2bad", 'digest must have the form algorithm:hex' },

  -- docker's Parse accepts this with domain "Uppercase", a known quirk marked
  -- FIXME in reference_test.go. This module applies the normalize.go domain
  -- rule, under which "Uppercase" is a path component.
  { "Uppercase/lowercase:tag", 'repository name must be lowercase ("Uppercase")' },

  -- synosh: mistakes users make on the NAS
  { string.rep("a", 256), "repository name must be at most 255 characters, got 256" },
  { "registry.lan/" .. string.rep("a", 243), "repository name must be at most 255 characters, got 256" },
  { "Nginx:1.25", 'repository name must be lowercase ("Nginx")' },
  { "nginx:-bad", 'tag must start with a letter, digit or underscore ("-bad")' },
  { "nginx:.bad", 'tag must start with a letter, digit or underscore (".bad")' },
  { "nginx:" .. string.rep("t", 129), "tag must be at most 128 characters, got 129" },
  { "nginx::1", 'tag must start with a letter, digit or underscore (":1")' },
  { "nginx:1:2", 'invalid character ":" in tag ("1:2")' },
  { "a/b:c/d", 'invalid character "/" in tag ("c/d")' },
  { "nginx@sha256:short", 'sha256 digest must be 64 hex characters ("short")' },
  { "nginx@sha256:" .. string.rep("F", 64), "sha256 digest must be lowercase hex" },
  { "nginx@sha256:" .. string.rep("g", 64), "sha256 digest must be 64 hex characters" },
  { "nginx@sha512:" .. HEX64_F, "sha512 digest must be 128 hex characters" },
  { "nginx@sha256:", 'missing hex characters after "sha256:"' },
  { "nginx@:" .. HEX64_F, 'missing digest algorithm before ":"' },
  { "nginx@sha-:" .. HEX64_F, 'invalid digest algorithm ("sha-")' },
  { "nginx@1sha:" .. HEX64_F, 'invalid digest algorithm ("1sha")' },
  { "nginx@sha..256:" .. HEX64_F, 'invalid digest algorithm ("sha..256")' },
  { "nginx@md5:" .. string.rep("a", 31), 'digest must have at least 32 hex characters' },
  { "nginx@md5:" .. string.rep("z", 32), 'digest must contain only hex characters' },
  { "nginx@" .. SHA256_F .. "@" .. SHA256_F, "sha256 digest must be 64 hex characters" },
  { "nginx:", 'missing tag after ":"' },
  { "nginx@", 'missing digest after "@"' },
  { "nginx:@" .. SHA256_F, 'missing tag after ":"' },
  { "-nginx", 'path component must start with a lowercase letter or digit' },
  { "nginx/", 'repository name must not end with "/"' },
  { "/nginx", 'repository name must not start with "/"' },
  { "foo//bar", 'repository name must not contain "//"' },
  { "foo___bar", 'separator in path component must be ".", "_", "__" or one or more "-", got "___"' },
  { "foo._bar", 'got "._"' },
  { "foo-_bar", 'got "-_"' },
  { " nginx", "must not contain whitespace" },
  { "nginx ", "must not contain whitespace" },
  { "nginx:1.25\n", "must not contain whitespace" },
  { "ngïnx", 'invalid character "ï" in repository name' },
  { ":5000/app", 'missing domain name before the port (":5000")' },
  { "registry.lan:/app", 'missing port after ":" ("registry.lan:")' },
  { "[]:5000/app", 'IPv6 address must contain only hex digits and ":" ("[]")' },
  { "[::1", 'IPv6 address must end with "]"' },
  { "[::1:5000/app", 'IPv6 address must end with "]" ("[::1:5000")' },
  { "<none>:<none>", "dangling images have no reference and must be addressed by image id" },
  { "<none>", "dangling images have no reference" },
  { "nginx:<none>", 'tag "<none>" marks an untagged image' },
  { "nginx@<none>", 'digest "<none>" marks an image without a repository digest' },
}

describe("reference.parse valid", function()
  for _, case in ipairs(valid_cases) do
    local input = case[1]
    it("parses " .. label(input), function()
      local ref, err = reference.parse(input)
      assert.is_nil(err)
      assert.is_table(ref)
      local expected_repository = case.domain and (case.domain .. "/" .. case.path) or case.path
      assert.are.equal(case.domain, ref.domain)
      assert.are.equal(case.path, ref.path)
      assert.are.equal(expected_repository, ref.repository)
      assert.are.equal(case.tag, ref.tag)
      assert.are.equal(case.digest, ref.digest)
    end)
  end
end)

describe("reference.format round trip", function()
  for _, case in ipairs(valid_cases) do
    local input = case[1]
    it("formats " .. label(input), function()
      local ref = assert(reference.parse(input))
      local formatted, err = reference.format(ref)
      assert.is_nil(err)
      assert.are.equal(input, formatted)
    end)
  end
end)

describe("reference.parse invalid", function()
  for _, case in ipairs(invalid_cases) do
    local input, fragment = case[1], case[2]
    it("rejects " .. label(input), function()
      local ref, err = reference.parse(input)
      assert.is_nil(ref)
      assert.is_string(err)
      local prefix = "invalid reference " .. quote(input) .. ": "
      assert.are.equal(prefix, err:sub(1, #prefix))
      assert.is_truthy(err:find(fragment, 1, true), "message lacks " .. quote(fragment) .. ": " .. err)
      assert.is_falsy(err:find("\n", 1, true))
    end)
  end
end)

describe("reference.parse messages", function()
  local message_cases = {
    { "Nginx:1.25", 'invalid reference "Nginx:1.25": repository name must be lowercase ("Nginx")' },
    { "nginx:", 'invalid reference "nginx:": missing tag after ":"' },
    { "alpine@sha256:abc", 'invalid reference "alpine@sha256:abc": sha256 digest must be 64 hex characters ("abc")' },
    { "", 'invalid reference "": empty' },
    -- The bad part is left out when it is the whole input.
    { "Nginx", 'invalid reference "Nginx": repository name must be lowercase' },
    { "a\nb", 'invalid reference "a\\nb": must not contain whitespace' },
  }
  for _, case in ipairs(message_cases) do
    local input, expected = case[1], case[2]
    it("formats message for " .. label(input), function()
      local _, err = reference.parse(input)
      assert.are.equal(expected, err)
    end)
  end
end)

describe("reference.parse argument types", function()
  local type_cases = {
    { nil, "reference must be a string, got nil" },
    { 42, "reference must be a string, got number" },
    { {}, "reference must be a string, got table" },
    { true, "reference must be a string, got boolean" },
  }
  for _, case in ipairs(type_cases) do
    local value, expected = case[1], case[2]
    it("rejects " .. type(value), function()
      local ref, err = reference.parse(value)
      assert.is_nil(ref)
      assert.are.equal(expected, err)
    end)
  end

  it("rejects non-table options", function()
    local ref, err = reference.parse("nginx", "latest")
    assert.is_nil(ref)
    assert.are.equal("options must be a table, got string", err)
  end)
end)

describe("reference.parse default_tag", function()
  -- { input, expected tag, expected digest }
  local default_tag_cases = {
    { "nginx", "latest", nil },
    { "ghcr.io/home-assistant/home-assistant", "latest", nil },
    { "nginx:1.25", "1.25", nil },
    { "alpine@" .. ALPINE_DIGEST, nil, ALPINE_DIGEST },
    { "alpine:3.20@" .. ALPINE_DIGEST, "3.20", ALPINE_DIGEST },
  }
  for _, case in ipairs(default_tag_cases) do
    local input, tag, digest = case[1], case[2], case[3]
    it("tags " .. label(input), function()
      local ref, err = reference.parse(input, { default_tag = "latest" })
      assert.is_nil(err)
      assert.are.equal(tag, ref.tag)
      assert.are.equal(digest, ref.digest)
    end)
  end

  it("leaves tag nil without option", function()
    local ref = assert(reference.parse("nginx", {}))
    assert.is_nil(ref.tag)
  end)

  it("rejects invalid default_tag", function()
    local ref, err = reference.parse("nginx", { default_tag = "-bad" })
    assert.is_nil(ref)
    assert.are.equal('invalid default_tag: invalid tag "-bad": tag must start with a letter, digit or underscore',
      err)
  end)
end)

describe("reference.valid_repository", function()
  local valid_repositories = {
    "nginx",
    "ghcr.io/home-assistant/home-assistant",
    "localhost:5000/team/app",
    "[::1]:5000/app",
    "foo__bar",
    string.rep("a", 255),
  }
  for _, input in ipairs(valid_repositories) do
    it("accepts " .. label(input), function()
      local ok, err = reference.valid_repository(input)
      assert.is_nil(err)
      assert.is_true(ok)
    end)
  end

  -- { input, fragment of the expected message }
  local invalid_repositories = {
    { "", 'invalid repository "": empty' },
    { "nginx:1.25", 'invalid repository "nginx:1.25": must not include a tag' },
    { "nginx@" .. SHA256_F, "must not include a digest" },
    { "localhost:5000/app:1", "must not include a tag" },
    { "Nginx", 'invalid repository "Nginx": repository name must be lowercase' },
    { "foo___bar", 'got "___"' },
    { " nginx", "must not contain whitespace" },
    { string.rep("a", 256), "repository name must be at most 255 characters, got 256" },
    { "nginx/", 'repository name must not end with "/"' },
  }
  for _, case in ipairs(invalid_repositories) do
    local input, fragment = case[1], case[2]
    it("rejects " .. label(input), function()
      local ok, err = reference.valid_repository(input)
      assert.is_nil(ok)
      assert.is_string(err)
      assert.is_truthy(err:find(fragment, 1, true), "message lacks " .. quote(fragment) .. ": " .. err)
    end)
  end

  it("rejects non-string", function()
    local ok, err = reference.valid_repository(nil)
    assert.is_nil(ok)
    assert.are.equal("repository must be a string, got nil", err)
  end)
end)

describe("reference.valid_tag", function()
  local valid_tags = { "latest", "1.25-alpine", "2024.6", "_", "TAG5", string.rep("t", 128) }
  for _, input in ipairs(valid_tags) do
    it("accepts " .. label(input), function()
      local ok, err = reference.valid_tag(input)
      assert.is_nil(err)
      assert.is_true(ok)
    end)
  end

  -- { input, expected message }
  local invalid_tags = {
    { "", 'invalid tag "": empty' },
    { "-bad", 'invalid tag "-bad": tag must start with a letter, digit or underscore' },
    { "a~b", 'invalid tag "a~b": invalid character "~" in tag' },
    { "a b", 'invalid tag "a b": invalid character " " in tag' },
    { string.rep("t", 129), 'invalid tag ' .. quote(string.rep("t", 129)) ..
      ': tag must be at most 128 characters, got 129' },
  }
  for _, case in ipairs(invalid_tags) do
    local input, expected = case[1], case[2]
    it("rejects " .. label(input), function()
      local ok, err = reference.valid_tag(input)
      assert.is_nil(ok)
      assert.are.equal(expected, err)
    end)
  end

  it("rejects non-string", function()
    local ok, err = reference.valid_tag(5)
    assert.is_nil(ok)
    assert.are.equal("tag must be a string, got number", err)
  end)
end)

describe("reference.format", function()
  -- { ref table, expected string }
  local format_cases = {
    { { repository = "nginx", tag = "1.25" }, "nginx:1.25" },
    { { repository = "alpine", digest = ALPINE_DIGEST }, "alpine@" .. ALPINE_DIGEST },
    { { repository = "alpine", tag = "3.20", digest = ALPINE_DIGEST }, "alpine:3.20@" .. ALPINE_DIGEST },
    { { repository = "nginx" }, "nginx" },
    { { domain = "ghcr.io", path = "home-assistant/home-assistant", tag = "2024.6" },
      "ghcr.io/home-assistant/home-assistant:2024.6" },
    { { path = "library/nginx", tag = "latest" }, "library/nginx:latest" },
  }
  for _, case in ipairs(format_cases) do
    local ref, expected = case[1], case[2]
    it("formats " .. label(expected), function()
      local formatted, err = reference.format(ref)
      assert.is_nil(err)
      assert.are.equal(expected, formatted)
    end)
  end

  -- { ref table, short name, expected message }
  local invalid_format_cases = {
    { "nginx", "string argument", "reference must be a table, got string" },
    { {}, "empty table", "reference table must have a repository or a path" },
    { { repository = 7 }, "number repository", "repository must be a string, got number" },
    { { repository = "Nginx" }, "uppercase repository",
      'invalid repository "Nginx": repository name must be lowercase' },
    { { repository = "nginx", tag = "-bad" }, "invalid tag",
      'invalid tag "-bad": tag must start with a letter, digit or underscore' },
    { { repository = "nginx", tag = "" }, "empty tag", 'invalid tag "": empty' },
    { { repository = "nginx", digest = "sha256:abc" }, "short digest",
      'invalid digest "sha256:abc": sha256 digest must be 64 hex characters ("abc")' },
    { { repository = "nginx", digest = "" }, "empty digest", 'invalid digest "": empty' },
    { { repository = "nginx", digest = 1 }, "number digest", "digest must be a string, got number" },
    { { domain = 5, path = "app" }, "number domain", "domain must be a string, got number" },
  }
  for _, case in ipairs(invalid_format_cases) do
    local ref, name, expected = case[1], case[2], case[3]
    it("rejects " .. name, function()
      local formatted, err = reference.format(ref)
      assert.is_nil(formatted)
      assert.are.equal(expected, err)
    end)
  end

  it("keeps parsed tag and digest", function()
    local input = "registry.lan:5000/team/app:1.0@" .. ALPINE_DIGEST
    local ref = assert(reference.parse(input))
    assert.are.equal(input, reference.format(ref))
  end)

  it("adds default tag", function()
    local ref = assert(reference.parse("lscr.io/linuxserver/sonarr", { default_tag = "latest" }))
    assert.are.equal("lscr.io/linuxserver/sonarr:latest", reference.format(ref))
  end)
end)
