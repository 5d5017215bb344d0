-- The cleanup policy on hand-made and random inventories: what each rule
-- selects and protects, the reasons, freed bytes, reports and JSON.
local policy = require "syno.policy"
local pattern = require "syno.pattern"
local report = require "syno.report"
local cjson = require "cjson"

local NOW = 1764806400 -- 2025-12-04
local DAY = 86400

local function image(repository, tag, created, fields)
  local record = { id = "sha256:" .. repository .. "-" .. tag, repository = repository, tag = tag,
                   created = created, size = 100, is_ddsm = false }
  for key, value in pairs(fields or {}) do
    record[key] = value
  end
  return record
end

local function actions(plan)
  local result = {}
  for _, entry in ipairs(plan) do
    result[entry.name] = entry.action
  end
  return result
end

local function plan_of(images, rules)
  rules = rules or {}
  rules.now = rules.now or NOW
  return policy.plan(images, rules)
end

-- An image module for execute: records each delete, fails the names in fail
-- with the DSM code given there.
local function recording_image(fail)
  local module = { calls = {} }
  function module.delete(record)
    local name = record.repository .. ":" .. record.tag
    module.calls[#module.calls + 1] = name
    if fail and fail[name] then
      error({ kind = "api", code = fail[name], message = "cannot delete " .. name .. ": DSM error" }, 0)
    end
    return true
  end
  return module
end

describe("cleanup plan", function()
  it("keeps the newest tags", function()
    local plan = plan_of({ image("nginx", "1", 100), image("nginx", "2", 200), image("nginx", "3", 300) },
      { keep = 2 })
    assert.are.same({ ["nginx:1"] = "delete", ["nginx:2"] = "keep", ["nginx:3"] = "keep" }, actions(plan))
  end)

  it("gives every entry a rule and a reason", function()
    local plan = plan_of({ image("nginx", "1", 100), image("<none>", "<none>", 5) }, { keep = 0, dangling = true })
    for _, entry in ipairs(plan) do
      assert.is_string(entry.reason)
      assert.is_string(entry.rule)
      assert.is_true(#entry.reason > 10)
    end
  end)

  it("keeps images of unknown age, which take no place among the newest", function()
    local plan = plan_of({ image("app", "old", 100), image("app", "mystery", 0), image("app", "none", nil),
      image("app", "new", 300) }, { keep = 1 })
    local result = actions(plan)
    assert.are.equal("keep", result["app:mystery"])
    assert.are.equal("keep", result["app:none"])
    assert.are.equal("keep", result["app:new"])
    assert.are.equal("delete", result["app:old"])
  end)

  it("keeps images of unknown age even with keep = 0", function()
    local plan = plan_of({ image("app", "mystery", 0), image("app", "old", 100) }, { keep = 0 })
    assert.are.same({ ["app:mystery"] = "keep", ["app:old"] = "delete" }, actions(plan))
  end)

  it("deletes images of unknown age only with unknown_age = delete, as the oldest", function()
    local images = { image("app", "mystery", 0), image("app", "old", 100), image("app", "new", 300) }
    local plan = plan_of(images, { keep = 2, unknown_age = "delete" })
    assert.are.same({ ["app:mystery"] = "delete", ["app:old"] = "keep", ["app:new"] = "keep" }, actions(plan))
    plan = plan_of(images, { older_than = "1d", unknown_age = "delete" })
    assert.are.equal("delete", actions(plan)["app:mystery"])
    plan = plan_of(images, { older_than = "1d" })
    assert.are.equal("keep", actions(plan)["app:mystery"])
  end)

  it("applies older_than to the creation time", function()
    local images = { image("app", "a", NOW - 40 * DAY), image("app", "b", NOW - 20 * DAY), image("app", "c", NOW - DAY) }
    local plan = plan_of(images, { older_than = "30d" })
    assert.are.same({ ["app:a"] = "delete", ["app:b"] = "keep", ["app:c"] = "keep" }, actions(plan))
    plan = plan_of(images, { older_than = "2w" })
    assert.are.same({ ["app:a"] = "delete", ["app:b"] = "delete", ["app:c"] = "keep" }, actions(plan))
    plan = plan_of(images, { older_than = "12h" })
    assert.are.same({ ["app:a"] = "delete", ["app:b"] = "delete", ["app:c"] = "delete" }, actions(plan))
  end)

  it("deletes only what keep and older_than both select", function()
    local images = { image("app", "a", NOW - 90 * DAY), image("app", "b", NOW - 60 * DAY),
      image("app", "c", NOW - 5 * DAY), image("app", "d", NOW - 2 * DAY), image("app", "e", NOW - DAY) }
    local plan = plan_of(images, { keep = 2, older_than = "30d" })
    assert.are.same({ ["app:a"] = "delete", ["app:b"] = "delete", ["app:c"] = "keep", ["app:d"] = "keep",
      ["app:e"] = "keep" }, actions(plan))
    for _, entry in ipairs(plan) do
      if entry.name == "app:c" then
        assert.matches("newer than 30d", entry.reason, 1, true)
      end
      if entry.name == "app:a" then
        assert.matches("not among the 2 newest", entry.reason, 1, true)
        assert.matches("older than 30d", entry.reason, 1, true)
      end
    end
  end)

  it("selects nothing without a keep or older_than rule", function()
    local plan = plan_of({ image("app", "a", 1), image("<none>", "<none>", 1) }, {})
    for _, entry in ipairs(plan) do
      assert.are.equal("keep", entry.action)
    end
  end)

  it("never selects DSM images unless show_dsm is set", function()
    local images = { image("synology/ddsm", "7", 1, { is_ddsm = true }) }
    assert.are.equal("keep", plan_of(images, { keep = 0, dangling = true })[1].action)
    assert.are.equal("dsm", plan_of(images, { keep = 0 })[1].rule)
    assert.are.equal("delete", plan_of(images, { keep = 0, show_dsm = true })[1].action)
  end)

  it("deletes dangling images only when asked, and within the age rule", function()
    local images = { image("<none>", "<none>", NOW - 40 * DAY, { id = "sha256:aaa" }),
      image("<none>", "<none>", NOW - DAY, { id = "sha256:bbb" }) }
    local plan = plan_of(images, { keep = 1 })
    assert.are.equal("keep", plan[1].action)
    assert.are.equal("keep", plan[2].action)
    plan = plan_of(images, { keep = 1, dangling = true })
    assert.are.equal("delete", plan[1].action)
    assert.are.equal("delete", plan[2].action)
    plan = plan_of(images, { dangling = true, older_than = "30d" })
    local by_id = {}
    for _, entry in ipairs(plan) do
      by_id[entry.image.id] = entry.action
    end
    assert.are.same({ ["sha256:aaa"] = "delete", ["sha256:bbb"] = "keep" }, by_id)
  end)

  it("treats an empty tag as dangling", function()
    local plan = plan_of({ image("app", "", 1, { id = "sha256:ccc" }) }, { keep = 0, dangling = true })
    assert.are.equal("dangling", plan[1].rule)
  end)

  it("protects what an exclude pattern names and says which", function()
    local images = { image("redis", "7.2", 1), image("redis", "7.4", 2), image("redis-stack", "7", 1) }
    local plan = plan_of(images, { keep = 0, exclude = { "redis" } })
    assert.are.same({ ["redis:7.2"] = "keep", ["redis:7.4"] = "keep", ["redis-stack:7"] = "delete" }, actions(plan))
    for _, entry in ipairs(plan) do
      if entry.name == "redis:7.2" then
        assert.matches('exclude pattern "redis"', entry.reason, 1, true)
      end
    end
  end)

  it("considers only what an include pattern names", function()
    local images = { image("nginx", "1", 1), image("redis", "7", 1) }
    local plan = plan_of(images, { keep = 0, include = "nginx:*" })
    assert.are.same({ ["nginx:1"] = "delete", ["redis:7"] = "keep" }, actions(plan))
  end)

  it("ranks keep among the images the other rules leave", function()
    -- The excluded newest tag takes no place: the two newest others stay.
    local images = { image("redis", "7.4", 400), image("redis", "7.2", 300), image("redis", "7.0", 200),
      image("redis", "6.2", 100) }
    local plan = plan_of(images, { keep = 2, exclude = "redis:7.4" })
    assert.are.same({ ["redis:7.4"] = "keep", ["redis:7.2"] = "keep", ["redis:7.0"] = "keep",
      ["redis:6.2"] = "delete" }, actions(plan))
  end)

  it("warns about an exclude pattern that matches nothing", function()
    local plan = plan_of({ image("nginx", "1", 1) }, { keep = 0, exclude = { "ngnix" } })
    assert.are.equal(1, #plan.warnings)
    assert.matches('"ngnix" matches no image', plan.warnings[1], 1, true)
  end)

  it("handles registry hosts with ports and tags with capitals", function()
    local images = { image("registry.lan:5000/team/app", "V1.0", 100), image("registry.lan:5000/team/app", "v1.0", 200),
      image("registry.lan:5000/team/app", "V2.0", 300) }
    local plan = plan_of(images, { keep = 1, exclude = "registry.lan:5000/team/app:V1*" })
    assert.are.same({ ["registry.lan:5000/team/app:V1.0"] = "keep", ["registry.lan:5000/team/app:v1.0"] = "delete",
      ["registry.lan:5000/team/app:V2.0"] = "keep" }, actions(plan))
  end)

  it("matches ids with and without the sha256: prefix", function()
    local images = { image("a", "1", 1, { id = "sha256:abcdef0123" }), image("b", "1", 1, { id = "abcdef9999" }),
      image("c", "1", 1, { id = "sha256:ffff" }) }
    local plan = plan_of(images, { keep = 0, exclude = "sha256:abcdef*" })
    assert.are.same({ ["a:1"] = "keep", ["b:1"] = "keep", ["c:1"] = "delete" }, actions(plan))
  end)

  it("deletes an image listed twice only once", function()
    local twice = image("nginx", "1", 100)
    local plan = plan_of({ twice, image("nginx", "1", 100), image("<none>", "<none>", 5, { id = "sha256:x" }),
      image("<none>", "<none>", 5, { id = "x" }) }, { keep = 0, dangling = true })
    assert.are.equal(2, policy.count_deletions(plan))
    local module = recording_image()
    policy.execute(plan, module)
    assert.are.equal(2, #module.calls)
  end)

  it("protects images that containers use, by any spelling of the name", function()
    local images = { image("nginx", "latest", 1), image("nginx", "1.25", 1), image("postgres", "15", 1),
      image("ghcr.io/app/web", "2", 1, { id = "sha256:0123456789abcdef" }), image("redis", "7", 1) }
    local plan = plan_of(images, { keep = 0, containers = {
      { name = "web", image = "docker.io/library/nginx", status = "running" },
      { name = "db", image = "postgres:15", status = "exited" },
      { name = "app", image = "sha256:0123456789ab" },
    } })
    local result = actions(plan)
    assert.are.same({ ["nginx:latest"] = "keep", ["nginx:1.25"] = "delete", ["postgres:15"] = "keep",
      ["ghcr.io/app/web:2"] = "keep", ["redis:7"] = "delete" }, result)
    for _, entry in ipairs(plan) do
      if entry.name == "postgres:15" then
        assert.are.equal("in_use", entry.rule)
        assert.matches("used by container db (exited)", entry.reason, 1, true)
      end
    end
  end)

  it("counts a shared image once", function()
    local shared = { id = "sha256:same", size = 500 }
    local plan = plan_of({
      image("nginx", "1.27", 300, shared), image("nginx", "latest", 300, shared), image("nginx", "1.25", 100),
    }, { keep = 0 })
    assert.are.equal(600, policy.bytes_freed(plan, policy.deletions(plan)))
  end)

  it("counts nothing for an image another repository keeps", function()
    local shared = { id = "sha256:same", size = 500 }
    local plan = plan_of({ image("a", "1", 300, shared), image("b", "1", 100, { id = "same", size = 500 }) },
      { keep = 0, exclude = "a" })
    assert.are.equal(0, policy.bytes_freed(plan, policy.deletions(plan)))
  end)

  it("sorts the plan by name, the same for any input order", function()
    local images = { image("b", "1", 1), image("a", "2", 2), image("a", "1", 1) }
    local first = plan_of(images, { keep = 1 })
    local second = plan_of({ images[3], images[1], images[2] }, { keep = 1 })
    assert.are.same(actions(first), actions(second))
    assert.are.same({ "a:1", "a:2", "b:1" }, { first[1].name, first[2].name, first[3].name })
  end)
end)

describe("rule checks", function()
  local function rejects(rules, expected)
    local ok, err = pcall(policy.plan, {}, rules)
    assert.is_false(ok)
    assert.are.equal("usage", err.kind)
    assert.matches(expected, err.message, 1, true)
  end

  it("rejects unknown rules and bad values", function()
    rejects({ kep = 1 }, 'unknown policy rule "kep"')
    rejects({ keep = -1 }, "keep must be an integer >= 0")
    rejects({ keep = 1.5 }, "keep must be an integer >= 0")
    rejects({ unknown_age = "drop" }, 'unknown_age must be "keep" or "delete"')
    rejects({ dangling = "yes" }, "dangling must be true or false")
  end)

  it("parses durations", function()
    local cases = { ["30d"] = 30 * DAY, ["12h"] = 12 * 3600, ["2w"] = 14 * DAY, ["1w3d"] = 10 * DAY,
      ["90min"] = 5400, ["45s"] = 45, ["0d"] = 0 }
    for text, seconds in pairs(cases) do
      assert.are.equal(seconds, policy.parse_duration(text), text)
    end
    for _, text in ipairs { "30", "d", "30 days", "1y", "-1d", "", "3.5d", "30D", "6m", "1M" } do
      local seconds, message = policy.parse_duration(text)
      assert.is_nil(seconds, text)
      assert.matches("such as 30d, 12h or 2w", message, 1, true)
    end
    assert.matches('"m" could mean minutes or months', select(2, policy.parse_duration("6m")), 1, true)
  end)

  it("stops a cleanup on an invalid pattern before it lists or deletes", function()
    local module = recording_image()
    module.list = function()
      error("list must not be called")
    end
    local ok, err = pcall(policy.cleanup, { image = module, keep = 0, exclude = { "redis:.*" } })
    assert.is_false(ok)
    assert.are.equal("usage", err.kind)
    assert.matches('invalid pattern "redis:.*"', err.message, 1, true)
    assert.matches('write "redis:*"', err.message, 1, true)
    assert.are.equal(0, #module.calls)
  end)
end)

describe("patterns", function()
  -- pattern, reference (repository:tag), expected match
  local cases = {
    { "redis:*", "redis:7.2", true },
    { "redis:*", "redis-stack:7", false },
    { "redis", "redis:7.2", true },
    { "redis", "redis:latest", true },
    { "redis", "bitnami/redis:7", false },
    { "*/redis", "bitnami/redis:7", true },
    { "*redis*", "bitnami/redis-stack:7", true },
    { "lscr.io/*", "lscr.io/linuxserver/radarr:latest", true },
    { "lscr.io/*", "ghcr.io/linuxserver/radarr:latest", false },
    { "registry.lan:5000/*", "registry.lan:5000/team/app:1.0", true },
    { "registry.lan:5000/team/app", "registry.lan:5000/team/app:dev", true },
    { "registry.lan:5000/team/app:1.*", "registry.lan:5000/team/app:1.4.2", true },
    { "registry.lan:5000/team/app:1.*", "registry.lan:5000/team/app:2.0", false },
    { "nginx:1.2?", "nginx:1.25", true },
    { "nginx:1.2?", "nginx:1.255", false },
    { "nginx:1.[0-2]*", "nginx:1.25", true },
    { "nginx:1.[0-2]*", "nginx:1.35", false },
    { "nginx:[!l]*", "nginx:latest", false },
    { "nginx:[!l]*", "nginx:1.25", true },
    { "app:V1*", "app:V1.0", true },
    { "app:V1*", "app:v1.0", false },
    { "*:latest", "ghcr.io/a/b:latest", true },
    { "*:latest", "ghcr.io/a/b:stable", false },
    { "*", "anything/at:all", true },
    { "nginx:latest", "nginx:latest-alpine", false },
    { "my_app", "my_app:1", true },
  }
  for _, case in ipairs(cases) do
    it(string.format("%q %s %q", case[1], case[3] and "matches" or "does not match", case[2]), function()
      local matcher = assert(pattern.compile(case[1]))
      local repository, tag = case[2]:match("^(.*):([^:/]+)$")
      assert.are.equal(case[3], matcher.matches { repository = repository, tag = tag })
    end)
  end

  local invalid = {
    { "redis:.*", 'looks like a regular expression: write "redis:*"' },
    { "nginx.*", 'write "nginx*"' },
    { "nginx,redis", "one pattern per --exclude" },
    { ".*redis", "looks like a regular expression" },
    { "^redis$", "looks like a regular expression" },
    { "redis:(7|6)", "looks like a regular expression" },
    { "Redis", "repository names are lowercase" },
    { "", "must not be empty" },
    { "nginx:[0-9", "has no closing" },
    { "nginx:]", "has no opening" },
    { "nginx:", "the tag after \":\" is empty" },
    { "a//b", "empty path component" },
    { "nginx latest", "no spaces" },
    { "sha256:xyz", "only hex digits" },
  }
  for _, case in ipairs(invalid) do
    it(string.format("refuses %q", case[1]), function()
      local matcher, message = pattern.compile(case[1])
      assert.is_nil(matcher)
      assert.matches(case[2], message, 1, true)
    end)
  end
end)

describe("execute and report", function()
  it("goes on after a failed delete and reports it", function()
    local plan = plan_of({ image("a", "1", 1), image("b", "1", 1), image("c", "1", 1) }, { keep = 0 })
    local module = recording_image { ["b:1"] = 117 }
    local result = policy.execute(plan, module)
    assert.are.same({ "a:1", "b:1", "c:1" }, module.calls)
    assert.are.equal(2, #result.deleted)
    assert.are.equal(1, #result.failed)
    assert.are.equal(117, result.failed[1].error.code)
    assert.are.equal(200, result.bytes_freed)
    local data = report.data(result)
    assert.are.equal(1, data.summary.failed)
    assert.are.equal("failed", data.images[2].result)
    assert.matches("DSM error", data.images[2].error.message, 1, true)
  end)

  it("counts an image the NAS refuses as in use as kept", function()
    local plan = plan_of({ image("a", "1", 1), image("b", "1", 1) }, { keep = 0 })
    local result = policy.execute(plan, recording_image { ["b:1"] = 1002 })
    assert.are.equal(1, #result.deleted)
    assert.are.equal(0, #result.failed)
    assert.are.equal(1, #result.kept)
    local data = report.data(result)
    assert.are.equal("in use", data.images[2].result)
    assert.are.equal("in_use", data.images[2].rule)
  end)

  it("stops when the NAS stops answering", function()
    local images = {}
    for i = 1, 6 do
      images[i] = image("app", "t" .. i, i)
    end
    local plan = plan_of(images, { keep = 0 })
    local calls = 0
    local result = policy.execute(plan, { delete = function()
      calls = calls + 1
      if calls >= 2 then
        error({ kind = "network", message = "cannot reach the NAS" }, 0)
      end
      return true
    end })
    assert.are.equal(3, calls)
    assert.are.equal(1, #result.deleted)
    assert.are.equal(2, #result.failed)
    assert.are.equal(3, #result.not_attempted)
    assert.are.equal("network", result.unreachable.kind)
    assert.matches("not attempted 3 %(the NAS could not be reached%)", report.summary_line(result))
  end)

  it("keeps a tag that names the same image as a kept tag", function()
    local shared = { id = "sha256:same" }
    local plan = plan_of({ image("nginx", "1.27", 300, shared), image("nginx", "latest", 300, shared),
      image("nginx", "1.25", 100) }, { keep = 0, exclude = "nginx:1.27" })
    assert.are.same({ ["nginx:1.27"] = "keep", ["nginx:latest"] = "keep", ["nginx:1.25"] = "delete" }, actions(plan))
    for _, entry in ipairs(plan) do
      if entry.name == "nginx:latest" then
        assert.are.equal("same_image", entry.rule)
        assert.matches("same image as nginx:1.27, which is kept", entry.reason, 1, true)
      end
    end
  end)

  it("counts images, not tags, for keep", function()
    -- latest and 2.21.4 are one image, so keep = 2 also keeps 2.19.4.
    local shared = { id = "sha256:portainer-2.21.4" }
    local plan = plan_of({ image("portainer", "2.21.4", 300, shared), image("portainer", "latest", 300, shared),
      image("portainer", "2.19.4", 200), image("portainer", "2.18.1", 100) }, { keep = 2 })
    assert.are.same({ ["portainer:2.21.4"] = "keep", ["portainer:latest"] = "keep",
      ["portainer:2.19.4"] = "keep", ["portainer:2.18.1"] = "delete" }, actions(plan))
    for _, entry in ipairs(plan) do
      if entry.action == "keep" then
        assert.are.equal("one of the 2 newest images of portainer", entry.reason)
      end
    end
  end)

  it("keeps latest and the plain version among images of one age", function()
    local plan = plan_of({ image("nginx", "1.27-alpine", 300), image("nginx", "1.27.3", 300),
      image("nginx", "latest", 300), image("redis", "7.4-alpine", 300), image("redis", "7.4", 300) },
      { keep = 1 })
    assert.are.same({ ["nginx:latest"] = "keep", ["nginx:1.27.3"] = "delete", ["nginx:1.27-alpine"] = "delete",
      ["redis:7.4"] = "keep", ["redis:7.4-alpine"] = "delete" }, actions(plan))
  end)

  it("orders tags of one age: latest, higher versions, plain before variants", function()
    local cases = {
      { "latest", "1.0" }, { "latest", "zzz" }, { "1.27.3", "1.27.2" }, { "10", "9" }, { "1.10", "1.9" },
      { "7.4", "7.4-alpine" }, { "1.27.3", "1.27-alpine" }, { "2.0.0", "2.0.0-rc1" }, { "v2", "v1" },
      { "010", "9" },
    }
    for _, case in ipairs(cases) do
      local first, second = case[1], case[2]
      assert.is_true(policy.tag_before(first, second), first .. " before " .. second)
      assert.is_false(policy.tag_before(second, first), second .. " after " .. first)
    end
    assert.is_false(policy.tag_before("1.0", "1.0"))
  end)

  it("says keep ranks only the included images", function()
    local plan = plan_of({ image("nginx", "1.25.4", 100), image("nginx", "1.27", 300), image("nginx", "1.26", 200) },
      { keep = 1, include = "nginx:1.25*" })
    for _, entry in ipairs(plan) do
      if entry.name == "nginx:1.25.4" then
        assert.are.equal("keep", entry.action)
        assert.are.equal("the newest included image of nginx", entry.reason)
      end
    end
  end)

  it("counts nothing as deleted in a dry run's JSON", function()
    local plan = plan_of({ image("a", "1", 1), image("a", "2", 2) }, { keep = 1 })
    local result = policy.execute(plan, { delete = function() return true end }, { dry_run = true })
    local data = report.data(result)
    assert.are.equal(0, data.summary.deleted)
    assert.are.equal(1, data.summary.would_delete)
    assert.are.equal(0, data.summary.bytes_freed)
    assert.are.equal(100, data.summary.would_free)
  end)

  it("stops at an interrupt and lists what it did not attempt", function()
    local plan = plan_of({ image("a", "1", 1), image("b", "1", 1), image("c", "1", 1) }, { keep = 0 })
    local module = { calls = 0 }
    function module.delete()
      module.calls = module.calls + 1
      if module.calls == 2 then
        error({ kind = "interrupted", message = "interrupted by SIGINT" }, 0)
      end
      return true
    end
    local result = policy.execute(plan, module)
    assert.is_true(result.interrupted)
    assert.are.equal(1, #result.deleted)
    assert.are.equal(1, #result.failed)
    assert.are.equal(1, #result.not_attempted)
    assert.matches("not attempted 1 %(interrupted%)", report.summary_line(result))
  end)

  it("deletes in batches where the module can", function()
    local images = {}
    for i = 1, 45 do
      images[i] = image("app", string.format("t%02d", i), i)
    end
    local plan = plan_of(images, { keep = 0 })
    local batches = {}
    local module = {
      delete = function()
        error("single delete must not be used")
      end,
      delete_many = function(records)
        batches[#batches + 1] = #records
        local results = {}
        for i, record in ipairs(records) do
          results[i] = record.tag == "t07" and { ok = false, error = "busy" } or { ok = true }
        end
        return results
      end,
    }
    local result = policy.execute(plan, module, { batch_size = 20 })
    assert.are.same({ 20, 20, 5 }, batches)
    assert.are.equal(44, #result.deleted)
    assert.are.equal(1, #result.failed)
  end)

  it("writes JSON with arrays for empty lists and every image's reason", function()
    local plan = plan_of({ image("a", "1", NOW - DAY) }, { keep = 1 })
    local text = policy.report(plan, { format = "json" })
    assert.matches('"warnings":[]', text, 1, true)
    local data = cjson.decode(text)
    assert.are.equal("plan", data.kind)
    assert.are.equal("keep", data.images[1].action)
    assert.are.equal("the newest image of a", data.images[1].reason)
    assert.are.equal(1, data.rules.keep)
    assert.are.equal(0, data.summary.planned)
  end)

  it("escapes control characters and quotes in JSON", function()
    local text = report.json({ name = "a\"b\\c\n\1" })
    assert.are.equal('{"name":"a\\"b\\\\c\\n\\u0001"}', text)
    assert.are.same({ name = "a\"b\\c\n\1" }, cjson.decode(text))
  end)

  it("formats a table with one line per image and a summary", function()
    local plan = plan_of({ image("a", "1", NOW - 3 * DAY), image("a", "2", NOW - DAY) }, { keep = 1 })
    local lines = {}
    for line in policy.report(plan, { now = NOW }):gmatch("[^\n]+") do
      lines[#lines + 1] = line
    end
    assert.are.equal(4, #lines)
    assert.matches("^ACTION", lines[1])
    assert.matches("^delete a:1 .* 3 days ago .*not the newest image of a", lines[2])
    assert.matches("^plan: delete 1 of 2 images, freeing 100 B", lines[4])
  end)
end)

-- Property tests: random inventories and rules, with a fixed seed per case so
-- a failure names the seed that reproduces it.
describe("cleanup plan properties", function()
  local repositories = { "nginx", "redis", "redis-stack", "lscr.io/linuxserver/radarr", "ghcr.io/a/app",
    "registry.lan:5000/team/app", "postgres", "bitnami/redis" }
  local tags = { "latest", "1", "1.2", "1.25.3", "7", "7.2-alpine", "V2", "Beta", "stable", "dev" }
  local patterns = { "redis", "redis:*", "lscr.io/*", "*:latest", "registry.lan:5000/*", "*/redis",
    "nginx:1.*", "ghcr.io/a/app:V*", "postgres:1?", "*redis*", "sha256:0*" }

  local function random_inventory(rng)
    local images, ids = {}, {}
    for _ = 1, rng(0, 40) do
      local repository, tag = repositories[rng(#repositories)], tags[rng(#tags)]
      if rng(10) == 1 then
        repository, tag = "<none>", "<none>"
      end
      local id
      if #ids > 0 and rng(5) == 1 then
        id = ids[rng(#ids)] -- several names share one image
      else
        id = string.format("%x%07x", rng(0, 15), rng(0, 0xfffffff))
        ids[#ids + 1] = id
      end
      if rng(2) == 1 then
        id = "sha256:" .. id
      end
      local created = NOW - rng(0, 400) * DAY
      local roll = rng(12)
      if roll == 1 then
        created = 0
      elseif roll == 2 then
        created = nil
      end
      images[#images + 1] = { id = id, repository = repository, tag = tag, created = created,
                              size = rng(1, 1000), is_ddsm = rng(15) == 1 }
    end
    return images
  end

  local function pick(rng, list, count)
    local result = {}
    for _ = 1, count do
      result[#result + 1] = list[rng(#list)]
    end
    return result
  end

  local function random_rules(rng, images)
    local rules = { now = NOW, dangling = rng(2) == 1, show_dsm = rng(4) == 1 }
    if rng(4) ~= 1 then
      rules.keep = rng(0, 4)
    end
    if rng(2) == 1 then
      rules.older_than = ({ "1d", "30d", "2w", "12h", "90d" })[rng(5)]
    end
    if rng(3) == 1 then
      rules.unknown_age = "delete"
    end
    if rng(2) == 1 then
      rules.exclude = pick(rng, patterns, rng(1, 3))
    end
    if rng(4) == 1 then
      rules.include = pick(rng, patterns, rng(1, 2))
    end
    if rng(3) == 1 and #images > 0 then
      local used = images[rng(#images)]
      rules.containers = { { name = "c", image = used.repository ~= "<none>" and (used.repository .. ":" .. used.tag)
        or used.id } }
    end
    return rules
  end

  local function known(created)
    return type(created) == "number" and created > 0
  end

  local function check(images, rules, seed)
    local plan = policy.plan(images, rules)
    local where = " (seed " .. seed .. ")"
    assert.are.equal(#images, #plan, "every image has one entry" .. where)
    local exclude = rules.exclude and pattern.compile_all(rules.exclude, "exclude")
    local include = rules.include and pattern.compile_all(rules.include, "include")
    local deleted_names = {}
    local seconds = rules.older_than and policy.parse_duration(rules.older_than)
    for _, entry in ipairs(plan) do
      local item = entry.image
      assert.is_true(entry.action == "keep" or entry.action == "delete", where)
      assert.is_true(type(entry.reason) == "string" and #entry.reason > 0, where)
      if entry.action == "delete" then
        local label = entry.name .. where
        -- Never twice.
        local identity = policy.is_dangling(item) and ("id:" .. policy.normal_id(item.id)) or entry.name
        assert.is_nil(deleted_names[identity], "deleted twice: " .. label)
        deleted_names[identity] = true
        -- Protections.
        assert.is_false(exclude ~= nil and pattern.first_match(exclude, item) ~= nil, "excluded: " .. label)
        assert.is_false(include ~= nil and pattern.first_match(include, item) == nil, "not included: " .. label)
        assert.is_false(item.is_ddsm and not rules.show_dsm, "DSM image: " .. label)
        if rules.containers and not policy.is_dangling(item) then
          assert.are_not.equal(rules.containers[1].image, item.repository .. ":" .. item.tag, "in use: " .. label)
        end
        if rules.keep == nil and seconds == nil then
          assert.is_true(policy.is_dangling(item), "no rule selects it: " .. label)
        end
        -- Unknown age protects a tagged image, and a dangling one under an age
        -- rule (without one, a dangling image's age does not matter).
        if not known(item.created) and not policy.is_dangling(item) then
          assert.are.equal("delete", rules.unknown_age, "unknown age: " .. label)
        elseif seconds and known(item.created) then
          assert.is_true(item.created <= NOW - seconds, "too young: " .. label)
        end
        if seconds and not known(item.created) then
          assert.are.equal("delete", rules.unknown_age, "unknown age: " .. label)
        end
        assert.is_false(policy.is_dangling(item) and not rules.dangling, "dangling kept by default: " .. label)
        -- keep: at least `keep` newer images (ids) of the repository stay.
        if rules.keep and not policy.is_dangling(item) then
          local newer_kept, count = {}, 0
          for _, other in ipairs(plan) do
            local o = other.image
            local newer_or_equal = not known(item.created) or (known(o.created) and o.created >= item.created)
            if other.action == "keep" and o.repository == item.repository and o.id ~= item.id
                and newer_or_equal and other.rule ~= "duplicate" and not newer_kept[o.id] then
              newer_kept[o.id] = true
              count = count + 1
            end
          end
          assert.is_true(count >= rules.keep, "keep violated: " .. label)
        end
      end
    end
    -- Executing the plan deletes each selected image once.
    local calls = {}
    policy.execute(plan, { delete = function(record)
      local key = record.repository .. ":" .. record.tag .. "@" .. tostring(policy.normal_id(record.id))
      assert.is_nil(calls[key], "delete sent twice for " .. key .. where)
      calls[key] = true
      return true
    end })
    -- The same inventory in another order gives the same decisions.
    local shuffled = {}
    for i = #images, 1, -1 do
      shuffled[#shuffled + 1] = images[i]
    end
    local again = policy.plan(shuffled, rules)
    local count_a, count_b = policy.count_deletions(plan), policy.count_deletions(again)
    assert.are.equal(count_a, count_b, "order changed the plan" .. where)
  end

  it("never deletes what a rule protects, nor twice, on 1,000 seeded inventories", function()
    local cases = 0
    for seed = 1, 1000 do
      math.randomseed(seed)
      local rng = math.random
      local images = random_inventory(rng)
      local rules = random_rules(rng, images)
      check(images, rules, seed)
      cases = cases + 1
    end
    assert.are.equal(1000, cases)
  end)
end)
