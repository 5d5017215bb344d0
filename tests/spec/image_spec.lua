-- syno.image end to end against the simulator, once per image API dialect
-- and transport. Each test checks the behaviour scripts see, which is the
-- same in both dialects, and the request each dialect sends for it.
local testenv = require "testenv"
local cjson = require "cjson"

-- The API and method each operation reaches, per dialect.
local wire = {
  document = {
    list = { "SYNO.Docker.Image", "list" }, get = { "SYNO.Docker.Image", "get" },
    pull = { "SYNO.Docker.Image", "pull" }, delete = { "SYNO.Docker.Image", "delete" },
    search = { "SYNO.Docker.Image.Search", "search" },
    registry_list = { "SYNO.Docker.Image.Registry", "list" },
    registry_add = { "SYNO.Docker.Image.Registry", "add" },
  },
  ["container-manager"] = {
    list = { "SYNO.Docker.Image", "list" }, get = { "SYNO.Docker.Image", "get" },
    pull = { "SYNO.Docker.Image", "pull_start" }, delete = { "SYNO.Docker.Image", "delete" },
    search = { "SYNO.Docker.Registry", "search" },
    registry_list = { "SYNO.Docker.Registry", "get" },
    registry_add = { "SYNO.Docker.Registry", "create" },
  },
}

-- HTTPS runs once: the transport is the same code for both dialects.
local cases = {
  { dialect = "document", transport = "http" },
  { dialect = "document", transport = "https" },
  { dialect = "container-manager", transport = "http" },
}

for _, case in ipairs(cases) do
  local dialect = case.dialect
  local cm = dialect == "container-manager"

  describe("image API, " .. dialect .. " dialect over " .. case.transport, function()
    local sim, nas

    -- How a string value reads after form decoding: plain in the document
    -- dialect, a JSON string literal in Container Manager's.
    local function sent(text)
      return cm and ('"' .. text .. '"') or text
    end

    -- The log records of one operation.
    local function calls(operation)
      return sim:calls(wire[dialect][operation][1], wire[dialect][operation][2])
    end

    -- The repository and tags of the one item of a Container Manager delete.
    local function deleted_item(call)
      local images = cjson.decode(call.body.images)
      assert.are.equal(1, #images)
      return images[1].repository, images[1].tags
    end

    setup(function()
      sim = testenv.start_sim { tls = case.transport == "https", args = { "--dialect", dialect } }
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

    it("detects the dialect", function()
      assert.are.equal(dialect, nas:info().dialect)
    end)

    it("list returns every non-DSM image", function()
      local images, total = nas.image.list()
      local state = sim:state()
      local visible = 0
      for _, item in ipairs(state.images) do
        if not item.is_ddsm then
          visible = visible + 1
        end
      end
      assert.are.equal(visible, #images)
      assert.are.equal(visible, total)
      for _, item in ipairs(images) do
        assert.is_false(item.is_ddsm)
      end
    end)

    it("list keeps the document's fields", function()
      local images = nas.image.list()
      for _, field in ipairs { "id", "repository", "tag", "size", "created", "is_ddsm" } do
        assert.is_not_nil(images[1][field], field)
      end
    end)

    it("list returns one record per tag", function()
      local tags = {}
      for _, item in ipairs(nas.image.list()) do
        if item.repository == "nginx" then
          tags[#tags + 1] = item.tag
        end
      end
      table.sort(tags)
      assert.are.same({ "1.25.3", "1.25.4", "1.27-alpine", "1.27.3", "latest" }, tags)
    end)

    it("list shows dangling images as <none>", function()
      local dangling = 0
      for _, item in ipairs(nas.image.list()) do
        if item.repository == "<none>" then
          assert.are.equal("<none>", item.tag)
          assert.matches("^sha256:%x+$", item.id)
          dangling = dangling + 1
        end
      end
      assert.are.equal(3, dangling)
    end)

    it("list with show_dsm includes DSM images", function()
      local images = nas.image.list { show_dsm = true }
      local found = {}
      for _, item in ipairs(images) do
        if item.is_ddsm then
          found[#found + 1] = item.repository
        end
      end
      assert.are.same({ "synology/ddsm" }, found)
    end)

    it("list pages with offset and limit", function()
      local all = nas.image.list()
      local page, total = nas.image.list { offset = 2, limit = 3 }
      assert.are.equal(3, #page)
      assert.are.equal(#all, total)
      assert.are.equal(all[3].id, page[1].id)
      assert.are.equal(all[5].tag, page[3].tag)
    end)

    it("list sends its parameters by GET", function()
      nas.image.list { offset = 1, limit = 5, show_dsm = true }
      local list_calls = calls("list")
      local call = list_calls[1]
      assert.are.equal("GET", call.http_method)
      assert.are.equal("/webapi/entry.cgi", call.path)
      assert.are.equal("1", call.query.version)
      assert.are.equal("true", call.query.show_dsm)
      if cm then
        -- Container Manager pages by image, so synosh lists all and pages by tag itself,
        -- and a second list without DSM images shows which ones are DSM's.
        assert.are.equal(2, #list_calls)
        assert.are.equal("0", call.query.offset)
        assert.are.equal("-1", call.query.limit)
        assert.are.equal("false", list_calls[2].query.show_dsm)
      else
        assert.are.equal(1, #list_calls)
        assert.are.equal("1", call.query.offset)
        assert.are.equal("5", call.query.limit)
      end
    end)

    it("get accepts repository and tag", function()
      local found = nas.image.get("nginx", "1.25.4")
      assert.are.equal("nginx", found.repository)
      assert.are.equal("1.25.4", found.tag)
      local call = calls("get")[1]
      assert.are.equal("GET", call.http_method)
      if cm then
        assert.are.equal(sent(found.id), call.query.identity)
      else
        assert.are.equal("nginx", call.query.repository)
        assert.are.equal("1.25.4", call.query.tag)
      end
    end)

    it("get accepts one reference with a registry", function()
      local found = nas.image.get("ghcr.io/home-assistant/home-assistant:2024.6")
      assert.are.equal("ghcr.io/home-assistant/home-assistant", found.repository)
      assert.are.equal("2024.6", found.tag)
    end)

    it("get accepts a registry host with a port", function()
      local found = nas.image.get("registry.lan:5000/team/app:1.4.2")
      assert.are.equal("registry.lan:5000/team/app", found.repository)
      assert.are.equal("1.4.2", found.tag)
      if not cm then
        local call = calls("get")[1]
        assert.are.equal("registry.lan%3A5000%2Fteam%2Fapp", call.raw_query:match("repository=([^&]*)"))
      end
    end)

    it("get returns integer size and time", function()
      local found = nas.image.get("redis:7.4")
      assert.are.equal("integer", math.type(found.size))
      assert.are.equal("integer", math.type(found.created))
    end)

    it("get of a missing image raises not_found", function()
      local ok, err = pcall(nas.image.get, "nginx:0.0.1")
      assert.is_false(ok)
      assert.are.equal("not_found", err.kind)
      assert.are.equal("SYNO.Docker.Image", err.api)
      assert.are.equal("get", err.method)
      assert.matches("^cannot get nginx:0.0.1: ", err.message)
      if not cm then
        assert.are.equal(1001, err.code)
        assert.matches("DSM error 1001", tostring(err))
      end
    end)

    it("list returns integer sizes and times", function()
      local images, total = nas.image.list()
      assert.are.equal("integer", math.type(total))
      assert.are.equal("integer", math.type(images[1].size))
      assert.are.equal("integer", math.type(images[1].created))
    end)

    it("image id is not a reference", function()
      local id = nas.image.list()[1].id
      local ok, err = pcall(nas.image.delete, id)
      assert.is_false(ok)
      assert.are.equal("usage", err.kind)
      assert.matches("is an image id, not a reference", err.message, 1, true)
    end)

    it("delete of a missing image raises not_found", function()
      local ok, err = pcall(nas.image.delete, "nginx:9.9.9")
      assert.is_false(ok)
      assert.are.equal("not_found", err.kind)
      assert.are.equal(1001, err.code)
      assert.matches("^cannot delete nginx:9.9.9: ", err.message)
    end)

    it("invalid reference fails before any request", function()
      local before = #sim:log()
      local ok, err = pcall(nas.image.get, "Nginx:1.25")
      assert.is_false(ok)
      assert.are.equal("usage", err.kind)
      assert.matches('invalid reference "Nginx:1.25"', err.message, 1, true)
      assert.are.equal(before, #sim:log())
    end)

    it("pull sends a POST and the image appears", function()
      local task = nas.image.pull("alpine", "3.20")
      assert.is_string(task)
      local call = calls("pull")[1]
      assert.are.equal("POST", call.http_method)
      assert.are.equal(sent("alpine"), call.body.repository)
      assert.are.equal(sent("3.20"), call.body.tag)
      assert.is_nil(call.query.repository)
      local found
      for _ = 1, 50 do
        local ok, result = pcall(nas.image.get, "alpine:3.20")
        if ok then
          found = result
          break
        end
        os.execute("sleep 0.1")
      end
      assert.is_not_nil(found)
    end)

    it("pull defaults the tag to latest", function()
      nas.image.pull("busybox")
      local call = calls("pull")[1]
      assert.are.equal(sent("latest"), call.body.tag)
    end)

    if cm then
      it("pull rejects the registry option", function()
        local ok, err = pcall(nas.image.pull, "ghcr.io/linuxserver/sonarr:4", { registry = "https://ghcr.io" })
        assert.is_false(ok)
        assert.are.equal("unsupported", err.kind)
        assert.matches("image.pull with the registry option is not offered by this NAS", err.message, 1, true)
        assert.matches("image.registry.use(name)", err.message, 1, true)
        assert.are.equal(0, #calls("pull"))
      end)
    else
      it("pull passes the registry option", function()
        nas.image.pull("ghcr.io/linuxserver/sonarr:4", { registry = "https://ghcr.io" })
        local call = calls("pull")[1]
        assert.are.equal("https://ghcr.io", call.body.registry)
        assert.are.equal("ghcr.io/linuxserver/sonarr", call.body.repository)
      end)
    end

    it("delete removes the image by POST", function()
      assert.is_true(nas.image.delete("redis:7.2"))
      local call = calls("delete")[1]
      assert.are.equal("POST", call.http_method)
      if cm then
        local repository, tags = deleted_item(call)
        assert.are.equal("redis", repository)
        assert.are.same({ "7.2" }, tags)
        assert.is_nil(call.body.force)
      else
        assert.are.equal("redis", call.body.repository)
        assert.are.equal("7.2", call.body.tag)
        assert.are.equal("false", call.body.force)
      end
      local ok, err = pcall(nas.image.get, "redis", "7.2")
      assert.is_false(ok)
      assert.are.equal("not_found", err.kind)
    end)

    if cm then
      it("delete rejects force", function()
        local ok, err = pcall(nas.image.delete, "redis", "7.2", { force = true })
        assert.is_false(ok)
        assert.are.equal("unsupported", err.kind)
        assert.matches("image.delete with force = true is not offered by this NAS", err.message, 1, true)
        assert.are.equal(0, #calls("delete"))
      end)

      it("delete of a dangling image is unsupported", function()
        local dangling
        for _, item in ipairs(nas.image.list()) do
          if item.repository == "<none>" then
            dangling = item
          end
        end
        local ok, err = pcall(nas.image.delete, dangling)
        assert.is_false(ok)
        assert.are.equal("unsupported", err.kind)
        assert.matches("image.prune()", err.message, 1, true)
        assert.are.equal(0, #calls("delete"))
      end)
    else
      it("delete passes force", function()
        nas.image.delete("redis", "7.2", { force = true })
        assert.are.equal("true", calls("delete")[1].body.force)
      end)

      it("delete takes a dangling image record by id", function()
        local dangling
        for _, item in ipairs(nas.image.list()) do
          if item.repository == "<none>" then
            dangling = item
          end
        end
        assert.is_true(nas.image.delete(dangling))
        local call = calls("delete")[1]
        assert.are.equal(dangling.id, call.body.repository)
        assert.are.equal("<none>", call.body.tag)
        for _, item in ipairs(sim:state().images) do
          assert.are_not.equal(dangling.id, item.id)
        end
      end)
    end

    it("delete takes a tagged image record", function()
      local images = nas.image.list()
      local target
      for _, item in ipairs(images) do
        if item.repository == "alpine" and item.tag == "3.18" then
          target = item
        end
      end
      assert.is_true(nas.image.delete(target))
      local call = calls("delete")[1]
      if cm then
        local repository, tags = deleted_item(call)
        assert.are.equal("alpine", repository)
        assert.are.same({ "3.18" }, tags)
      else
        assert.are.equal("alpine", call.body.repository)
        assert.are.equal("3.18", call.body.tag)
      end
    end)

    it("delete of an image in use raises", function()
      local ok, err = pcall(nas.image.delete, "postgres:15")
      assert.is_false(ok)
      assert.are.equal("api", err.kind)
      assert.are.equal(1002, err.code)
      assert.matches("remove the container that uses it first", err.message, 1, true)
      if not cm then
        assert.is_nil(err.message:find("force", 1, true))
      end
    end)

    it("delete rejects unknown options", function()
      local ok, err = pcall(nas.image.delete, "redis:7.2", { forse = true })
      assert.is_false(ok)
      assert.are.equal("usage", err.kind)
      assert.matches('unknown option "forse"', err.message, 1, true)
    end)

    it("delete_many returns a result per image", function()
      local results = nas.image.delete_many { "redis:7.2", "postgres:15", "nginx:9.9.9", "alpine:3.18" }
      assert.are.equal(4, #results)
      assert.are.equal("redis:7.2", results[1].image)
      assert.is_true(results[1].ok)
      assert.is_false(results[2].ok)
      assert.are.equal(1002, results[2].error.code)
      assert.is_false(results[3].ok)
      assert.are.equal("not_found", results[3].error.kind)
      assert.is_true(results[4].ok)
      local remaining = {}
      for _, item in ipairs(sim:state().images) do
        remaining[item.repository .. ":" .. item.tag] = true
      end
      assert.is_nil(remaining["redis:7.2"])
      assert.is_nil(remaining["alpine:3.18"])
      assert.is_true(remaining["postgres:15"])
    end)

    it("delete_many sends one call per item or batch", function()
      nas.image.delete_many({ "redis:7.2", "alpine:3.18", "alpine:3.19" }, { batch_size = 2 })
      assert.are.equal(cm and 2 or 3, #calls("delete"))
    end)

    it("search returns matching results", function()
      local results = nas.image.search("nginx")
      assert.is_true(#results > 0)
      for _, result in ipairs(results) do
        assert.matches("nginx", result.name:lower(), 1, true)
        for _, field in ipairs { "description", "star_count", "is_official", "is_automated" } do
          assert.is_not_nil(result[field], field)
        end
      end
      local call = calls("search")[1]
      assert.are.equal("GET", call.http_method)
      assert.are.equal(sent("nginx"), cm and call.query.q or call.query.query)
    end)

    it("search encodes the query strictly", function()
      local query = "a b+c&d#e%f/ü"
      nas.image.search(query)
      local call = calls("search")[1]
      if cm then
        assert.are.equal(sent(query), call.query.q)
        assert.matches("q=%22a%20b%2Bc%26d%23e%25f%2F%C3%BC%22", call.raw_query, 1, true)
      else
        assert.are.equal(query, call.query.query)
        assert.matches("query=a%20b%2Bc%26d%23e%25f%2F%C3%BC", call.raw_query, 1, true)
      end
    end)

    if cm then
      it("search rejects the registry option", function()
        local ok, err = pcall(nas.image.search, "sonarr", { registry = "https://ghcr.io" })
        assert.is_false(ok)
        assert.are.equal("unsupported", err.kind)
        assert.matches("image.search with the registry option is not offered", err.message, 1, true)
        assert.are.equal(0, #calls("search"))
      end)
    else
      it("search passes the registry option", function()
        nas.image.search("sonarr", { registry = "https://ghcr.io" })
        assert.are.equal("https://ghcr.io", calls("search")[1].query.registry)
      end)
    end

    it("registry.list returns the registries", function()
      local registries = nas.image.registry.list()
      assert.are.equal(4, #registries)
      assert.are.equal("GET", calls("registry_list")[1].http_method)
      local defaults = {}
      for _, registry in ipairs(registries) do
        assert.is_string(registry.url)
        if registry.is_default then
          defaults[#defaults + 1] = registry.name
        end
      end
      assert.are.same({ "Docker Hub" }, defaults)
    end)

    it("registry.add sends the password only in the body", function()
      local secret = "reg pass+&#%"
      assert.is_true(nas.image.registry.add { name = "Team", url = "https://registry.lan:5000",
                                               username = "ci", password = secret })
      local call = calls("registry_add")[1]
      assert.are.equal("POST", call.http_method)
      assert.are.equal(sent(secret), call.body.password)
      assert.are.equal("", call.raw_query)
      local names = {}
      for _, registry in ipairs(nas.image.registry.list()) do
        names[registry.name] = true
        assert.is_nil(registry.password)
      end
      assert.is_true(names.Team)
    end)

    it("registry.add of an existing name raises", function()
      local ok, err = pcall(nas.image.registry.add, { name = "Docker Hub", url = "https://x.example" })
      assert.is_false(ok)
      assert.are.equal(1003, err.code)
      assert.matches("choose another name", err.message, 1, true)
    end)

    it("call reaches any API", function()
      local data = nas:call("SYNO.Docker.Image", "list", 1, { offset = 0, limit = 1 })
      assert.are.equal(1, #data.images)
    end)
  end)
end
