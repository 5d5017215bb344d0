-- The Container Manager dialect: its wire format field for field, the
-- functions only it offers, batch delete, dialect selection, and the
-- "not offered" errors of the document dialect.
local testenv = require "testenv"
local cjson = require "cjson"
local core = require "syno.core"

-- Returns what a request carried besides the session id: the query of a GET,
-- the form body of a POST without its trailing _sid field.
local function request_text(record)
  if record.http_method == "GET" then
    return record.raw_query
  end
  assert.are.equal("", record.raw_query)
  local text, count = record.raw_body:gsub("&_sid=[^&]*$", "")
  assert.are.equal(1, count, "a POST carries _sid last")
  return text
end

-- The wire of every Container Manager call synosh makes. run performs the
-- call on nas; expected is the request text that request_text returns.
local wire_cases = {
  {
    name = "image.list", api = "SYNO.Docker.Image", method = "list", http = "GET",
    run = function(nas) nas.image.list() end,
    expected = "api=SYNO.Docker.Image&version=1&method=list&offset=0&limit=-1&show_dsm=false",
  },
  {
    name = "image.get", api = "SYNO.Docker.Image", method = "get", http = "GET",
    run = function(nas) nas.image.get("redis:7.4") end,
    expected = function(state)
      local id
      for _, image in ipairs(state.images) do
        if image.repository == "redis" and image.tag == "7.4" then
          id = image.id
        end
      end
      return "api=SYNO.Docker.Image&version=1&method=get&identity=%22" .. core.escape(id) .. "%22"
    end,
  },
  {
    name = "image.pull", api = "SYNO.Docker.Image", method = "pull_start", http = "POST",
    run = function(nas) nas.image.pull("alpine:3.20") end,
    expected = "api=SYNO.Docker.Image&version=1&method=pull_start&repository=%22alpine%22&tag=%223.20%22",
  },
  {
    name = "image.pull_status", api = "SYNO.Docker.Image", method = "pull_status", http = "GET",
    run = function(nas) nas.image.pull_status(nas.image.pull("alpine:3.20")) end,
    expected = "api=SYNO.Docker.Image&version=1&method=pull_status&task_id=%22pull_task_1%22",
  },
  {
    name = "image.upgrade", api = "SYNO.Docker.Image", method = "upgrade_start", http = "POST",
    run = function(nas) nas.image.upgrade("nginx") end,
    expected = "api=SYNO.Docker.Image&version=1&method=upgrade_start&repository=%22nginx%22",
  },
  {
    name = "image.upgrade_status", api = "SYNO.Docker.Image", method = "upgrade_status", http = "GET",
    run = function(nas) nas.image.upgrade_status(nas.image.upgrade("nginx")) end,
    expected = "api=SYNO.Docker.Image&version=1&method=upgrade_status&task_id=%22upgrade_task_1%22",
  },
  {
    name = "image.delete", api = "SYNO.Docker.Image", method = "delete", http = "POST",
    run = function(nas) nas.image.delete("redis:7.2") end,
    expected = "api=SYNO.Docker.Image&version=1&method=delete"
      .. "&images=%5B%7B%22repository%22%3A%22redis%22%2C%22tags%22%3A%5B%227.2%22%5D%7D%5D",
  },
  {
    name = "image.prune", api = "SYNO.Docker.Image", method = "prune", http = "POST",
    run = function(nas) nas.image.prune() end,
    expected = "api=SYNO.Docker.Image&version=1&method=prune",
  },
  {
    name = "image.search", api = "SYNO.Docker.Registry", method = "search", http = "GET",
    run = function(nas) nas.image.search("nginx") end,
    expected = "api=SYNO.Docker.Registry&version=2&method=search&q=%22nginx%22&offset=0&limit=50&page_size=50",
  },
  {
    name = "image.registry.list", api = "SYNO.Docker.Registry", method = "get", http = "GET",
    run = function(nas) nas.image.registry.list() end,
    expected = "api=SYNO.Docker.Registry&version=2&method=get",
  },
  {
    name = "image.registry.tags", api = "SYNO.Docker.Registry", method = "tags", http = "GET",
    run = function(nas) nas.image.registry.tags("nginx") end,
    expected = "api=SYNO.Docker.Registry&version=2&method=tags&repo=%22nginx%22",
  },
  {
    name = "image.registry.add", api = "SYNO.Docker.Registry", method = "create", http = "POST",
    run = function(nas)
      nas.image.registry.add { name = "Team 2", url = "https://registry.lan:5001", username = "ci",
                               password = "p \"q\"" }
    end,
    expected = "api=SYNO.Docker.Registry&version=2&method=create&name=%22Team%202%22"
      .. "&url=%22https%3A%2F%2Fregistry.lan%3A5001%22&enable_trust_SSC=false&username=%22ci%22"
      .. "&password=%22p%20%5C%22q%5C%22%22",
  },
  {
    name = "image.registry.use", api = "SYNO.Docker.Registry", method = "using", http = "POST",
    run = function(nas) nas.image.registry.use("LinuxServer.io") end,
    expected = "api=SYNO.Docker.Registry&version=2&method=using&name=%22LinuxServer.io%22",
  },
  {
    name = "image.registry.remove", api = "SYNO.Docker.Registry", method = "delete", http = "POST",
    run = function(nas) nas.image.registry.remove("LinuxServer.io") end,
    expected = "api=SYNO.Docker.Registry&version=2&method=delete&name=%22LinuxServer.io%22",
  },
  {
    name = "syno.container.list", api = "SYNO.Docker.Container", method = "list", http = "GET",
    run = function(nas) nas.container.list() end,
    expected = "api=SYNO.Docker.Container&version=1&method=list&offset=0&limit=-1&type=%22all%22",
  },
}

describe("container-manager wire format", function()
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

  for _, case in ipairs(wire_cases) do
    it(case.name .. " sends " .. case.method, function()
      local state = sim:state()
      case.run(nas)
      local records = sim:calls(case.api, case.method)
      assert.are.equal(1, #records)
      local record = records[1]
      assert.are.equal(case.http, record.http_method)
      assert.are.equal("/webapi/entry.cgi", record.path)
      assert.are.equal(200, record.status)
      assert.are.equal(cjson.null, record.code)
      local expected = type(case.expected) == "function" and case.expected(state) or case.expected
      assert.are.equal(expected, request_text(record))
      assert.are.equal(nas.session.synotoken, record.headers["X-SYNO-TOKEN"])
      if case.http == "POST" then
        assert.are.equal("application/x-www-form-urlencoded; charset=utf-8", record.headers["Content-Type"])
        assert.are.equal(nas.session.sid, record.body._sid)
      else
        assert.are.equal("id=" .. nas.session.sid, record.headers.Cookie)
      end
    end)
  end

  it("delete_many groups the tags of a repository", function()
    nas.image.delete_many { "alpine:3.18", "redis:7.2", "alpine:3.19" }
    local record = sim:calls("SYNO.Docker.Image", "delete")[1]
    assert.are.equal('[{"repository":"alpine","tags":["3.18","3.19"]},{"repository":"redis","tags":["7.2"]}]',
      record.body.images)
  end)

  it("call encodes values as JSON literals", function()
    nas:call("SYNO.Docker.Container", "list", 1, { offset = 0, limit = -1, type = "all" })
    local record = sim:calls("SYNO.Docker.Container", "list")[1]
    assert.are.equal("api=SYNO.Docker.Container&version=1&method=list&limit=-1&offset=0&type=%22all%22",
      record.raw_query)
  end)
end)

describe("container-manager functions", function()
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

  local function state_image(repository, tag)
    for _, image in ipairs(sim:state().images) do
      if image.repository == repository and image.tag == tag then
        return image
      end
    end
    return nil
  end

  it("wait polls a pull until it finishes", function()
    local task = nas.image.pull("alpine:3.21")
    local status = nas.image.wait(task, { interval = 0.05 })
    assert.is_true(status.finished)
    assert.are.equal("alpine", status.repository)
    assert.are.equal("3.21", status.tag)
    assert.are.equal("integer", math.type(status.downloaded))
    -- The simulator sends two unfinished replies before the finished one.
    local polls = sim:calls("SYNO.Docker.Image", "pull_status")
    assert.is_true(#polls >= 3)
    assert.is_not_nil(state_image("alpine", "3.21"))
  end)

  it("pull_status reports progress", function()
    local task = nas.image.pull("alpine:3.21")
    local first = nas.image.pull_status(task)
    local second = nas.image.pull_status(task)
    assert.is_false(first.finished)
    assert.is_true(second.downloaded > first.downloaded)
  end)

  it("wait raises timeout for a slow task", function()
    sim:config { task_polls = 1000 }
    local task = nas.image.pull("alpine:3.21")
    local ok, err = pcall(nas.image.wait, task, { timeout = 0.2, interval = 0.05 })
    assert.is_false(ok)
    assert.are.equal("timeout", err.kind)
    assert.matches("image.pull_status(\"" .. task .. "\")", err.message, 1, true)
  end)

  it("upgrade gives the repository a new build", function()
    local old_id = state_image("nginx", "1.25.3").id
    local task = nas.image.upgrade("nginx")
    local status = nas.image.wait(task, { interval = 0.05 })
    assert.is_true(status.finished)
    assert.are.equal("nginx", status.image)
    assert.are.equal(5, status.total)
    assert.are.equal(5, status.current)
    assert.is_true(#sim:calls("SYNO.Docker.Image", "upgrade_status") >= 3)
    assert.are_not.equal(old_id, state_image("nginx", "1.25.3").id)
  end)

  it("upgrade of an unknown repository raises", function()
    local ok, err = pcall(nas.image.upgrade, "nosuch/image")
    assert.is_false(ok)
    assert.are.equal("not_found", err.kind)
    assert.matches("^cannot upgrade nosuch/image: ", err.message)
  end)

  it("prune removes dangling images", function()
    local dangling_size = 0
    for _, image in ipairs(sim:state().images) do
      if image.repository == "<none>" then
        dangling_size = dangling_size + image.size
      end
    end
    local result = nas.image.prune()
    assert.are.equal(3, #result.ImagesDeleted)
    assert.are.equal(dangling_size, result.SpaceReclaimed)
    assert.are.equal("integer", math.type(result.SpaceReclaimed))
    for _, image in ipairs(sim:state().images) do
      assert.are_not.equal("<none>", image.repository)
    end
  end)

  it("registry.use changes the default registry", function()
    assert.is_true(nas.image.registry.use("GitHub Container Registry"))
    local defaults = {}
    for _, registry in ipairs(nas.image.registry.list()) do
      if registry.is_default then
        defaults[#defaults + 1] = registry.name
      end
    end
    assert.are.same({ "GitHub Container Registry" }, defaults)
  end)

  it("search on a registry without search raises", function()
    nas.image.registry.use("GitHub Container Registry")
    local ok, err = pcall(nas.image.search, "nginx")
    assert.is_false(ok)
    assert.are.equal("api", err.kind)
    assert.are.equal(1053, err.code)
    assert.matches("image.registry.use(name)", err.message, 1, true)
  end)

  it("registry.remove deletes a registry", function()
    assert.is_true(nas.image.registry.remove("LinuxServer.io"))
    for _, registry in ipairs(nas.image.registry.list()) do
      assert.are_not.equal("LinuxServer.io", registry.name)
    end
  end)

  it("registry.remove of Docker Hub raises", function()
    local ok, err = pcall(nas.image.registry.remove, "Docker Hub")
    assert.is_false(ok)
    assert.are.equal(1005, err.code)
    assert.matches('cannot remove registry "Docker Hub"', err.message, 1, true)
  end)

  it("registry.tags returns tag strings", function()
    local tags = nas.image.registry.tags("nginx")
    assert.are.same({ "1.25.3", "1.25.4", "1.27-alpine", "1.27.3", "latest" }, tags)
  end)

  it("container.list returns running and stopped containers", function()
    local containers, total = nas.container.list()
    assert.are.equal(4, #containers)
    assert.are.equal(4, total)
    local by_name = {}
    for _, container in ipairs(containers) do
      by_name[container.name] = container
    end
    assert.are.equal("postgres:15", by_name["postgres-old"].image)
    assert.are.equal("exited", by_name["postgres-old"].status)
    assert.are.equal("running", by_name.jellyfin.status)
  end)

  it("delete_many sends bounded batches", function()
    local targets = { "alpine:3.18", "alpine:3.19", "alpine:3.20", "redis:7.2", "redis:7.4" }
    local results = nas.image.delete_many(targets, { batch_size = 2 })
    for index, result in ipairs(results) do
      assert.is_true(result.ok, targets[index])
    end
    local records = sim:calls("SYNO.Docker.Image", "delete")
    assert.are.equal(3, #records)
    for _, record in ipairs(records) do
      local count = 0
      for _, item in ipairs(cjson.decode(record.body.images)) do
        count = count + #item.tags
      end
      assert.is_true(count <= 2)
    end
  end)

  it("delete_many fails a dangling image without a call", function()
    local dangling
    for _, item in ipairs(nas.image.list()) do
      if item.repository == "<none>" then
        dangling = item
      end
    end
    local results = nas.image.delete_many { dangling, "redis:7.2" }
    assert.is_false(results[1].ok)
    assert.are.equal(dangling, results[1].image)
    assert.are.equal("unsupported", results[1].error.kind)
    assert.is_true(results[2].ok)
    local record = sim:calls("SYNO.Docker.Image", "delete")[1]
    assert.are.equal('[{"repository":"redis","tags":["7.2"]}]', record.body.images)
  end)

  it("delete_many fails a whole batch with its call", function()
    sim:faults { { kind = "dsm_error", code = 117, api = "SYNO.Docker.Image", method = "delete" } }
    local results = nas.image.delete_many({ "redis:7.2", "alpine:3.18", "alpine:3.19" }, { batch_size = 2 })
    assert.is_false(results[1].ok)
    assert.is_false(results[2].ok)
    assert.are.equal(117, results[1].error.code)
    assert.is_true(results[3].ok)
  end)

  it("delete_many rejects a bad batch size", function()
    local ok, err = pcall(nas.image.delete_many, { "redis:7.2" }, { batch_size = 0 })
    assert.is_false(ok)
    assert.are.equal("usage", err.kind)
    assert.matches("batch_size must be an integer >= 1", err.message, 1, true)
  end)
end)

describe("container-manager simulator", function()
  local sim, client

  setup(function()
    sim = testenv.start_sim { args = { "--dialect", "container-manager" } }
    client = core.http_client { timeout = 10 }
  end)

  teardown(function()
    client:close()
    sim:stop()
  end)

  before_each(function()
    sim:reset()
  end)

  -- Sends one request and returns the decoded envelope.
  local function send(method, query, body, headers)
    local status, text = client:request(method, sim.url .. "/webapi/entry.cgi?" .. query, body, headers)
    assert.are.equal(200, status)
    return cjson.decode(text)
  end

  local function login()
    local data = send("POST", "", "api=SYNO.API.Auth&version=7&method=login&account=admin&passwd="
      .. core.escape(testenv.password) .. "&format=sid&enable_syno_token=yes",
      { ["Content-Type"] = "application/x-www-form-urlencoded" }).data
    return data.sid, data.synotoken
  end

  local list = "api=SYNO.Docker.Image&version=1&method=list"

  it("lists Container Manager APIs in Info", function()
    local info = send("GET", "api=SYNO.API.Info&version=1&method=query&query=all").data
    assert.are.equal(2, info["SYNO.Docker.Registry"].maxVersion)
    assert.are.equal("entry.cgi", info["SYNO.API.Auth"].path)
    assert.are.equal(7, info["SYNO.API.Auth"].maxVersion)
    for _, api in ipairs { "SYNO.Docker.Image", "SYNO.Docker.Registry", "SYNO.Docker.Container",
                           "SYNO.Docker.Project", "SYNO.Docker.Utils" } do
      assert.are.equal("entry.cgi", info[api].path, api)
      assert.are.equal("JSON", info[api].requestFormat, api)
    end
    assert.is_nil(info["SYNO.Docker.Image.Search"])
    assert.is_nil(info["SYNO.Docker.Image.Registry"])
  end)

  it("rejects a number sent as a string", function()
    local sid = login()
    local reply = send("GET", list .. "&offset=%220%22&limit=-1&_sid=" .. sid)
    assert.are.equal(114, reply.error.code)
  end)

  it("rejects a list without offset", function()
    local sid = login()
    assert.are.equal(114, send("GET", list .. "&limit=-1&_sid=" .. sid).error.code)
    assert.is_true(send("GET", list .. "&offset=0&limit=-1&_sid=" .. sid).success)
  end)

  it("rejects a JSON body", function()
    local sid = login()
    local reply = send("POST", list .. "&_sid=" .. sid, '{"offset":0,"limit":-1}',
      { ["Content-Type"] = "application/json" })
    assert.are.equal(101, reply.error.code)
  end)

  it("rejects a write without the synotoken", function()
    local sid, token = login()
    local prune = "api=SYNO.Docker.Image&version=1&method=prune&_sid=" .. sid
    assert.are.equal(119, send("GET", prune).error.code)
    assert.is_true(send("GET", prune, nil, { ["X-SYNO-TOKEN"] = token }).success)
  end)

  it("answers 1052 for tags by repository", function()
    local sid = login()
    local reply = send("GET", "api=SYNO.Docker.Registry&version=2&method=tags&repository=%22nginx%22&_sid=" .. sid)
    assert.are.equal(1052, reply.error.code)
  end)
end)

describe("dialect selection", function()
  local document_sim, cm_sim

  setup(function()
    document_sim = testenv.start_sim()
    cm_sim = testenv.start_sim { args = { "--dialect", "container-manager" } }
  end)

  teardown(function()
    document_sim:stop()
    cm_sim:stop()
  end)

  it("detects each dialect from Info", function()
    local document = testenv.connect(document_sim)
    local container_manager = testenv.connect(cm_sim)
    assert.are.equal("document", document:info().dialect)
    assert.are.equal("container-manager", container_manager:info().dialect)
    document:close()
    container_manager:close()
  end)

  it("forced dialect wins over detection", function()
    local nas = testenv.connect(cm_sim, { dialect = "document" })
    assert.are.equal("document", nas:info().dialect)
    local ok, err = pcall(nas.image.search, "nginx")
    nas:close()
    assert.is_false(ok)
    assert.are.equal("unsupported", err.kind)
    assert.matches("SYNO.Docker.Image.Search", err.message, 1, true)
  end)

  it("auto detects like no dialect", function()
    local nas = testenv.connect(cm_sim, { dialect = "auto" })
    assert.are.equal("container-manager", nas:info().dialect)
    nas:close()
  end)

  it("rejects an unknown dialect", function()
    local ok, err = pcall(testenv.connect, cm_sim, { dialect = "dsm7" })
    assert.is_false(ok)
    assert.are.equal("usage", err.kind)
    assert.matches('invalid dialect "dsm7"', err.message, 1, true)
  end)
end)

describe("document dialect lacks", function()
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

  local cases = {
    { "image.pull_status", function() return nas.image.pull_status("pull_task_1") end },
    { "image.wait", function() return nas.image.wait("pull_task_1") end },
    { "image.upgrade", function() return nas.image.upgrade("nginx") end },
    { "image.upgrade_status", function() return nas.image.upgrade_status("upgrade_task_1") end },
    { "image.prune", function() return nas.image.prune() end },
    { "image.registry.use", function() return nas.image.registry.use("Docker Hub") end },
    { "image.registry.remove", function() return nas.image.registry.remove("Team registry") end },
    { "image.registry.tags", function() return nas.image.registry.tags("nginx") end },
    { "syno.container.list", function() return nas.container.list() end },
  }

  for _, case in ipairs(cases) do
    it(case[1], function()
      local before = #sim:log()
      local ok, err = pcall(case[2])
      assert.is_false(ok)
      assert.are.equal("unsupported", err.kind)
      assert.are.equal(case[1] .. " is not offered by this NAS: " .. sim.url
        .. " speaks the document dialect of the image API; only a NAS with Container Manager "
        .. "(DSM 7) or the Docker package (DSM 6) offers it", err.message)
      assert.are.equal(before, #sim:log())
    end)
  end
end)

describe("JSON literal encoding", function()
  local dsm = require "syno.dsm"

  local cases = {
    { "string", "nginx", '"nginx"' },
    { "slash and quote", 'a/b "c"', '"a/b \\"c\\""' },
    { "control character", "a\nb\1", '"a\\nb\\u0001"' },
    { "integer", -1, "-1" },
    { "integral float", 2.0, "2" },
    { "float", 0.1, "0.1" },
    { "large integer", 9007199254740993, "9007199254740993" },
    { "boolean", false, "false" },
    { "array", { "1.25", "latest" }, '["1.25","latest"]' },
    { "object with sorted keys", { tags = { "7.2" }, repository = "redis" }, '{"repository":"redis","tags":["7.2"]}' },
    { "empty table", {}, "[]" },
  }
  for _, case in ipairs(cases) do
    it("encodes " .. case[1], function()
      assert.are.equal(case[3], dsm.json_literal(case[2]))
    end)
  end

  it("rejects a mixed table", function()
    local ok, err = pcall(dsm.json_literal, { 1, name = "x" })
    assert.is_false(ok)
    assert.are.equal("usage", err.kind)
  end)

  it("rejects NaN", function()
    local ok, err = pcall(dsm.json_literal, 0 / 0)
    assert.is_false(ok)
    assert.are.equal("usage", err.kind)
  end)
end)
