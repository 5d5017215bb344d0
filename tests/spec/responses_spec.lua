-- Malformed responses from the NAS, sent by the simulator's body fault: each
-- gives one clean protocol error, never a Lua runtime error. The cases are
-- the kinds of input that fuzzing the response handling turned up.
local testenv = require "testenv"
local syno = require "syno"
local cjson = require "cjson"

local IMAGE_ID = "sha256:" .. string.rep("a", 64)

local function envelope(data)
  return cjson.encode { success = true, data = data }
end

-- Checks that err is a one-line protocol error containing text.
local function assert_protocol_error(err, text)
  assert.is_true(syno.errors.is(err), tostring(err))
  assert.are.equal("protocol", err.kind)
  assert.is_nil(err.message:find("\n", 1, true))
  assert.matches(text, err.message, 1, true)
end

describe("malformed responses", function()
  local sim, nas

  setup(function()
    sim = testenv.start_sim()
  end)

  teardown(function()
    sim:stop()
  end)

  before_each(function()
    sim:reset()
    nas = testenv.connect(sim)
  end)

  after_each(function()
    nas:close()
  end)

  -- Each row: the body the NAS sends for an image API call, the call, and a
  -- part of the expected message.
  local cases = {
    { "data that is a number", envelope(5), "list",
      "with success=true but data that is a number, not an object" },
    { "data that is a string", envelope("ok"), "list",
      "with success=true but data that is a string, not an object" },
    { "list images as a number", envelope { images = 5 }, "list",
      "SYNO.Docker.Image list returned images a number where an array was expected" },
    { "list images as an object", envelope { images = { a = 1 } }, "list",
      "returned images an array or object where an array was expected" },
    { "list entry as a string", envelope { images = { "nginx" } }, "list",
      "returned images[1] a string where an object was expected" },
    { "list total as a string", envelope { images = {}, total = "many" }, "list",
      "returned total a string where a number was expected" },
    { "get image as a string", envelope { image = "nginx" }, "get",
      "SYNO.Docker.Image get returned image a string where an object was expected" },
    { "search images as a string", envelope { images = "none" }, "search",
      "SYNO.Docker.Image.Search search returned images a string" },
    { "registries as a number", envelope { registries = 7 }, "registries",
      "SYNO.Docker.Image.Registry list returned registries a number" },
    { "pull task id as an object", envelope { task_id = { id = 1 } }, "pull",
      "SYNO.Docker.Image pull returned task_id an array or object where a string was expected" },
  }

  local calls = {
    list = { "SYNO.Docker.Image", "list", function() return nas.image.list() end },
    get = { "SYNO.Docker.Image", "get", function() return nas.image.get("nginx:latest") end },
    pull = { "SYNO.Docker.Image", "pull", function() return nas.image.pull("nginx:latest") end },
    search = { "SYNO.Docker.Image.Search", "search", function() return nas.image.search("nginx") end },
    registries = { "SYNO.Docker.Image.Registry", "list", function() return nas.image.registry.list() end },
  }

  for _, case in ipairs(cases) do
    local name, body, call, expected = case[1], case[2], case[3], case[4]
    it(name .. " is a protocol error", function()
      local api, method, fn = table.unpack(calls[call])
      sim:faults { { kind = "body", api = api, method = method, body = body } }
      local ok, err = pcall(fn)
      assert.is_false(ok)
      assert_protocol_error(err, expected)
    end)
  end

  it("JSON nested 100,000 deep is a protocol error", function()
    sim:faults { { kind = "body", api = "SYNO.Docker.Image", body = string.rep("[", 100000) } }
    local ok, err = pcall(nas.image.list)
    assert.is_false(ok)
    assert_protocol_error(err, "with invalid or truncated JSON")
  end)

  it("JSON nested 900 deep is read", function()
    local body = '{"success":true,"data":{"images":[],"extra":' .. string.rep("[", 900)
      .. string.rep("]", 900) .. "}}"
    sim:faults { { kind = "body", api = "SYNO.Docker.Image", body = body } }
    local images = nas.image.list()
    assert.are.same({}, images)
  end)

  it("list of 100,000 images is read", function()
    local entry = cjson.encode { id = IMAGE_ID, repository = "r", tag = "t", size = 1, created = 2 }
    local entries = {}
    for index = 1, 100000 do
      entries[index] = entry
    end
    local body = '{"success":true,"data":{"total":100000,"images":[' .. table.concat(entries, ",") .. "]}}"
    sim:faults { { kind = "body", api = "SYNO.Docker.Image", body = body } }
    local images, total = nas.image.list()
    assert.are.equal(100000, #images)
    assert.are.equal(100000, total)
    assert.are.equal("r", images[100000].repository)
  end)
end)

describe("malformed Container Manager responses", function()
  local sim, nas

  setup(function()
    sim = testenv.start_sim { args = { "--dialect", "container-manager" } }
  end)

  teardown(function()
    sim:stop()
  end)

  before_each(function()
    sim:reset()
    nas = testenv.connect(sim)
  end)

  after_each(function()
    nas:close()
  end)

  local function image_entry(tags)
    return { id = IMAGE_ID, repository = "nginx", tags = tags, size = 1, created = 2 }
  end

  -- Each row: the body, the API and method it replaces, the call, and a part
  -- of the expected message.
  local cases = {
    { "list images as a number", envelope { images = 5 }, "SYNO.Docker.Image", "list",
      function() return nas.image.list() end,
      "SYNO.Docker.Image list returned images a number where an array was expected" },
    { "list entry as a number", envelope { images = { 5 } }, "SYNO.Docker.Image", "list",
      function() return nas.image.list() end,
      "SYNO.Docker.Image list returned images[1] a number where an object was expected" },
    { "get from a list of numbers", envelope { images = { 5 } }, "SYNO.Docker.Image", "list",
      function() return nas.image.get("nginx:latest") end,
      "SYNO.Docker.Image list returned images[1] a number where an object was expected" },
    { "tags as a string", envelope { images = { image_entry("latest") } }, "SYNO.Docker.Image", "list",
      function() return nas.image.list() end,
      "SYNO.Docker.Image list images[1] returned tags a string where an array was expected" },
    { "tag as a number", envelope { images = { image_entry { 1 } } }, "SYNO.Docker.Image", "list",
      function() return nas.image.list() end,
      "SYNO.Docker.Image list images[1] returned tags[1] a number where a string was expected" },
    { "registries as a number", envelope { registries = 7 }, "SYNO.Docker.Registry", "get",
      function() return nas.image.registry.list() end,
      "SYNO.Docker.Registry get returned registries a number where an array was expected" },
    { "search results as a string", envelope { data = "none" }, "SYNO.Docker.Registry", "search",
      function() return nas.image.search("nginx") end,
      "SYNO.Docker.Registry search returned data a string where an array was expected" },
    { "containers as a number", envelope { containers = 3 }, "SYNO.Docker.Container", "list",
      function() return nas.container.list() end,
      "SYNO.Docker.Container list returned containers a number where an array was expected" },
    { "pruned images as a string", envelope { ImagesDeleted = "all" }, "SYNO.Docker.Image", "prune",
      function() return nas.image.prune() end,
      "SYNO.Docker.Image prune returned ImagesDeleted a string where an array was expected" },
  }

  for _, case in ipairs(cases) do
    local name, body, api, method, fn, expected = table.unpack(case)
    it(name .. " is a protocol error", function()
      sim:faults { { kind = "body", api = api, method = method, body = body } }
      local ok, err = pcall(fn)
      assert.is_false(ok)
      assert_protocol_error(err, expected)
    end)
  end

  it("an image with null tags is one dangling record", function()
    local body = '{"success":true,"data":{"images":[{"id":"' .. IMAGE_ID
      .. '","repository":"nginx","tags":null,"size":1,"created":2}]}}'
    sim:faults { { kind = "body", api = "SYNO.Docker.Image", method = "list", body = body } }
    local images = nas.image.list()
    assert.are.equal(1, #images)
    assert.are.equal("<none>", images[1].tag)
  end)
end)

describe("malformed discovery", function()
  local sim

  setup(function()
    sim = testenv.start_sim()
  end)

  teardown(function()
    sim:stop()
  end)

  before_each(function()
    sim:reset()
  end)

  local function info_body(entry)
    return envelope {
      ["SYNO.API.Auth"] = { path = "entry.cgi", minVersion = 1, maxVersion = 7 },
      ["SYNO.Docker.Image"] = entry,
    }
  end

  local cases = {
    { "entry that is a string", info_body("entry.cgi"),
      "invalid entry for SYNO.Docker.Image: the entry is a string, not an object" },
    { "path that is a number", info_body { path = 5 },
      "invalid entry for SYNO.Docker.Image: its path is a number, not a string" },
    { "path that leaves /webapi/", info_body { path = "../admin.cgi" },
      'invalid entry for SYNO.Docker.Image: its path "../admin.cgi" is not a relative path under /webapi/' },
    { "path with a query", info_body { path = "entry.cgi?x=1" },
      'its path "entry.cgi?x=1" is not a relative path' },
    { "data that is an array", envelope { 1, 2 }, "does not offer SYNO.API.Auth" },
  }

  for _, case in ipairs(cases) do
    local name, body, expected = case[1], case[2], case[3]
    it(name .. " fails cleanly", function()
      sim:faults { { kind = "body", api = "SYNO.API.Info", body = body } }
      local ok, err = pcall(testenv.connect, sim)
      assert.is_false(ok)
      assert_protocol_error(err, expected)
    end)
  end
end)
