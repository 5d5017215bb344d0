-- syno.image end to end against the simulator, over HTTP and over HTTPS.
local testenv = require "testenv"

for _, transport in ipairs { "http", "https" } do
  describe("image API over " .. transport, function()
    local sim, nas

    setup(function()
      sim = testenv.start_sim { tls = transport == "https" }
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

    it("list with show_dsm includes DSM images", function()
      local images = nas.image.list { show_dsm = true }
      local found = false
      for _, item in ipairs(images) do
        found = found or item.is_ddsm
      end
      assert.is_true(found)
    end)

    it("list pages with offset and limit", function()
      local all = nas.image.list()
      local page, total = nas.image.list { offset = 2, limit = 3 }
      assert.are.equal(3, #page)
      assert.are.equal(#all, total)
      assert.are.equal(all[3].id, page[1].id)
    end)

    it("list sends the document's parameters by GET", function()
      nas.image.list { offset = 1, limit = 5, show_dsm = true }
      local calls = sim:calls("SYNO.Docker.Image", "list")
      assert.are.equal(1, #calls)
      local call = calls[1]
      assert.are.equal("GET", call.http_method)
      assert.are.equal("/webapi/entry.cgi", call.path)
      assert.are.equal("1", call.query.version)
      assert.are.equal("1", call.query.offset)
      assert.are.equal("5", call.query.limit)
      assert.are.equal("true", call.query.show_dsm)
    end)

    it("get accepts repository and tag", function()
      local found = nas.image.get("nginx", "1.25.4")
      assert.are.equal("nginx", found.repository)
      assert.are.equal("1.25.4", found.tag)
      local call = sim:calls("SYNO.Docker.Image", "get")[1]
      assert.are.equal("GET", call.http_method)
      assert.are.equal("nginx", call.query.repository)
      assert.are.equal("1.25.4", call.query.tag)
    end)

    it("get accepts one reference with a registry", function()
      local found = nas.image.get("ghcr.io/home-assistant/home-assistant:2024.6")
      assert.are.equal("ghcr.io/home-assistant/home-assistant", found.repository)
      assert.are.equal("2024.6", found.tag)
    end)

    it("get accepts a registry host with a port", function()
      local found = nas.image.get("registry.lan:5000/team/app:1.4.2")
      assert.are.equal("registry.lan:5000/team/app", found.repository)
      local call = sim:calls("SYNO.Docker.Image", "get")[1]
      assert.are.equal("registry.lan%3A5000%2Fteam%2Fapp", call.raw_query:match("repository=([^&]*)"))
    end)

    it("get of a missing image raises not_found", function()
      local ok, err = pcall(nas.image.get, "nginx:0.0.1")
      assert.is_false(ok)
      assert.are.equal("not_found", err.kind)
      assert.are.equal(1001, err.code)
      assert.are.equal("SYNO.Docker.Image", err.api)
      assert.are.equal("get", err.method)
      assert.matches("DSM error 1001", tostring(err))
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
      local call = sim:calls("SYNO.Docker.Image", "pull")[1]
      assert.are.equal("POST", call.http_method)
      assert.are.equal("alpine", call.body.repository)
      assert.are.equal("3.20", call.body.tag)
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
      local call = sim:calls("SYNO.Docker.Image", "pull")[1]
      assert.are.equal("latest", call.body.tag)
    end)

    it("pull passes the registry option", function()
      nas.image.pull("ghcr.io/linuxserver/sonarr:4", { registry = "https://ghcr.io" })
      local call = sim:calls("SYNO.Docker.Image", "pull")[1]
      assert.are.equal("https://ghcr.io", call.body.registry)
      assert.are.equal("ghcr.io/linuxserver/sonarr", call.body.repository)
    end)

    it("delete removes the image by POST", function()
      assert.is_true(nas.image.delete("redis:7.2"))
      local call = sim:calls("SYNO.Docker.Image", "delete")[1]
      assert.are.equal("POST", call.http_method)
      assert.are.equal("redis", call.body.repository)
      assert.are.equal("7.2", call.body.tag)
      assert.are.equal("false", call.body.force)
      local ok, err = pcall(nas.image.get, "redis", "7.2")
      assert.is_false(ok)
      assert.are.equal("not_found", err.kind)
    end)

    it("delete passes force", function()
      nas.image.delete("redis", "7.2", { force = true })
      assert.are.equal("true", sim:calls("SYNO.Docker.Image", "delete")[1].body.force)
    end)

    it("delete takes a dangling image record by id", function()
      local dangling
      for _, item in ipairs(nas.image.list()) do
        if item.repository == "<none>" then
          dangling = item
        end
      end
      assert.is_true(nas.image.delete(dangling))
      local call = sim:calls("SYNO.Docker.Image", "delete")[1]
      assert.are.equal(dangling.id, call.body.repository)
      assert.are.equal("<none>", call.body.tag)
      for _, item in ipairs(sim:state().images) do
        assert.are_not.equal(dangling.id, item.id)
      end
    end)

    it("delete takes a tagged image record", function()
      local images = nas.image.list()
      local target
      for _, item in ipairs(images) do
        if item.repository == "alpine" and item.tag == "3.18" then
          target = item
        end
      end
      assert.is_true(nas.image.delete(target))
      local call = sim:calls("SYNO.Docker.Image", "delete")[1]
      assert.are.equal("alpine", call.body.repository)
      assert.are.equal("3.18", call.body.tag)
    end)

    it("delete of an image in use raises", function()
      local ok, err = pcall(nas.image.delete, "postgres:15")
      assert.is_false(ok)
      assert.are.equal("api", err.kind)
      assert.are.equal(1002, err.code)
      assert.matches("delete with force", err.message, 1, true)
    end)

    it("delete rejects unknown options", function()
      local ok, err = pcall(nas.image.delete, "redis:7.2", { forse = true })
      assert.is_false(ok)
      assert.are.equal("usage", err.kind)
      assert.matches('unknown option "forse"', err.message, 1, true)
    end)

    it("search returns matching results", function()
      local results = nas.image.search("nginx")
      assert.is_true(#results > 0)
      for _, result in ipairs(results) do
        assert.matches("nginx", result.name:lower(), 1, true)
      end
      local call = sim:calls("SYNO.Docker.Image.Search", "search")[1]
      assert.are.equal("GET", call.http_method)
      assert.are.equal("nginx", call.query.query)
    end)

    it("search encodes the query strictly", function()
      nas.image.search("a b+c&d#e%f/ü")
      local call = sim:calls("SYNO.Docker.Image.Search", "search")[1]
      assert.are.equal("a b+c&d#e%f/ü", call.query.query)
      assert.matches("query=a%20b%2Bc%26d%23e%25f%2F%C3%BC", call.raw_query, 1, true)
    end)

    it("search passes the registry option", function()
      nas.image.search("sonarr", { registry = "https://ghcr.io" })
      assert.are.equal("https://ghcr.io", sim:calls("SYNO.Docker.Image.Search", "search")[1].query.registry)
    end)

    it("registry.list returns the registries", function()
      local registries = nas.image.registry.list()
      assert.is_true(#registries >= 1)
      assert.are.equal("GET", sim:calls("SYNO.Docker.Image.Registry", "list")[1].http_method)
      local default_count = 0
      for _, registry in ipairs(registries) do
        if registry.is_default then
          default_count = default_count + 1
        end
      end
      assert.are.equal(1, default_count)
    end)

    it("registry.add sends the password only in the body", function()
      local secret = "reg pass+&#%"
      assert.is_true(nas.image.registry.add { name = "Team", url = "https://registry.lan:5000",
                                               username = "ci", password = secret })
      local call = sim:calls("SYNO.Docker.Image.Registry", "add")[1]
      assert.are.equal("POST", call.http_method)
      assert.are.equal(secret, call.body.password)
      assert.are.equal("", call.raw_query)
      local names = {}
      for _, registry in ipairs(nas.image.registry.list()) do
        names[registry.name] = true
        assert.is_nil(registry.password)
      end
      assert.is_true(names.Team)
    end)

    it("call reaches any API", function()
      local data = nas:call("SYNO.Docker.Image", "list", 1, { limit = 1 })
      assert.are.equal(1, #data.images)
    end)
  end)
end
