-- scripts/cleanup.lua against both image API dialects: the same plan and the
-- same deletes, with Container Manager's batches and its container list.
local testenv = require "testenv"
local cjson = require "cjson"

local cleanup = testenv.root .. "/scripts/cleanup.lua"

-- The repository:tag names the simulator saw deleted, and the number of
-- delete calls, in either dialect.
local function deletes(sim, cm)
  local names, calls = {}, 0
  for _, record in ipairs(sim:calls("SYNO.Docker.Image", "delete")) do
    -- A call that the NAS rejected because the session was lost is sent
    -- again after the new login, so it does not count.
    if record.code == 106 or record.code == 107 or record.code == 119 then
      goto continue
    end
    calls = calls + 1
    local params = record.body
    if cm then
      for _, item in ipairs(cjson.decode(params.images)) do
        for _, tag in ipairs(item.tags) do
          names[#names + 1] = item.repository .. ":" .. tag
        end
      end
    elseif params.tag == "<none>" then
      names[#names + 1] = "<none> (" .. params.repository:gsub("^sha256:", ""):sub(1, 12) .. ")"
    else
      names[#names + 1] = params.repository .. ":" .. params.tag
    end
    ::continue::
  end
  table.sort(names)
  return names, calls
end

for _, dialect in ipairs { "document", "container-manager" } do
  local cm = dialect == "container-manager"

  describe("cleanup on the " .. dialect .. " dialect", function()
    local sim

    setup(function()
      sim = testenv.start_sim { args = { "--dialect", dialect } }
    end)

    teardown(function()
      sim:stop()
    end)

    before_each(function()
      sim:reset()
    end)

    local function run(args)
      local words = { cleanup }
      for _, word in ipairs(args) do
        words[#words + 1] = word
      end
      return testenv.run { args = words, env = testenv.sim_env(sim) }
    end

    local function planned(args)
      local words = { "--plan", "--json" }
      for _, word in ipairs(args) do
        words[#words + 1] = word
      end
      local result = run(words)
      assert.are.equal(0, result.status, result.stderr)
      local plan = cjson.decode(result.stdout)
      local names, by_name = {}, {}
      for _, item in ipairs(plan.images) do
        by_name[item.name] = item
        if item.action == "delete" then
          names[#names + 1] = item.name
        end
      end
      table.sort(names)
      return names, by_name
    end

    it("dry run sends no write call", function()
      local result = run { "--keep", "2", "--older-than", "30d", "--exclude", "lscr.io/*", "--dry-run" }
      assert.are.equal(0, result.status, result.stderr)
      for _, record in ipairs(sim:log()) do
        assert.is_true(record.http_method == "GET" or record.api == "SYNO.API.Auth",
          "write call: " .. tostring(record.api) .. " " .. tostring(record.method))
      end
    end)

    it("deletes exactly the planned images", function()
      local rules = { "--keep", "2", "--older-than", "30d", "--exclude", "lscr.io/*" }
      local expected = planned(rules)
      assert.is_true(#expected >= 4)
      sim:reset()
      local result = run(rules)
      local sent = deletes(sim, cm)
      assert.are.same(expected, sent)
      assert.are.equal(0, result.status, result.stderr)
      if not cm then
        -- Without a container list the NAS refuses postgres:15, which a
        -- container uses, and the cleanup counts it as kept.
        assert.matches("kept postgres:15: used by a container (the NAS refused the delete)", result.stderr, 1, true)
      end
    end)

    it("logs in again when the session expires mid-cleanup", function()
      local expected = planned { "--keep", "1", "--unknown-age", "delete" }
      sim:reset()
      -- Container Manager needs fewer calls (it deletes in batches).
      sim:config { session_ttl_calls = cm and 2 or 3 }
      local result = run { "--keep", "1", "--unknown-age", "delete" }
      assert.are.equal(0, result.status, result.stderr)
      assert.are.same(expected, (deletes(sim, cm)))
      assert.is_true(sim:stats().logins >= 2)
      assert.are.equal(0, sim:stats().sessions)
    end)

    it("reports a 502 from a proxy for one delete and goes on", function()
      sim:faults { { kind = "http_status", status = 502, api = "SYNO.Docker.Image", method = "delete" } }
      local result = run { "--keep", "1", "--include", "redis", "--json" }
      assert.are.equal(1, result.status)
      local report = cjson.decode(result.stdout)
      assert.is_true(report.summary.failed >= 1)
      assert.matches("HTTP 502", result.stderr, 1, true)
      assert.is_nil(report.unreachable)
    end)

    it("never deletes an image a container uses, running or stopped", function()
      local _, by_name = planned { "--keep", "0", "--unknown-age", "delete" }
      run { "--keep", "0", "--unknown-age", "delete" }
      local left = {}
      for _, item in ipairs(sim:state().images) do
        left[item.repository .. ":" .. item.tag] = true
      end
      for _, used in ipairs { "postgres:15", "jellyfin/jellyfin:latest", "nginxproxy/nginx-proxy:latest",
        "ghcr.io/home-assistant/home-assistant:stable" } do
        assert.is_true(left[used], used)
        if cm then
          assert.are.equal("in_use", by_name[used].rule, used)
          assert.matches("used by container ", by_name[used].reason, 1, true)
        end
      end
      if cm then
        assert.matches("postgres-old (exited)", by_name["postgres:15"].reason, 1, true)
      end
    end)

    if cm then
      it("deletes in batches of at most 20 images per call", function()
        local expected = planned { "--keep", "0", "--unknown-age", "delete" }
        local result = run { "--keep", "0", "--unknown-age", "delete" }
        assert.are.equal(0, result.status, result.stderr)
        local sent, calls = deletes(sim, cm)
        assert.are.same(expected, sent)
        assert.are.equal(math.ceil(#expected / 20), calls)
        for _, record in ipairs(sim:calls("SYNO.Docker.Image", "delete")) do
          local count = 0
          for _, item in ipairs(cjson.decode(record.body.images)) do
            count = count + #item.tags
          end
          assert.is_true(count <= 20)
        end
      end)

      it("keeps dangling images, which it cannot delete by name", function()
        local _, by_name = planned { "--keep", "5" }
        local dangling = 0
        for name, item in pairs(by_name) do
          if name:match("^<none>") then
            dangling = dangling + 1
            assert.are.equal("keep", item.action)
            assert.matches("image.prune()", item.reason, 1, true)
          end
        end
        assert.is_true(dangling > 0)
      end)

      it("reports a failed item of a batch and goes on", function()
        sim:faults { { kind = "dsm_error", code = 117, api = "SYNO.Docker.Image", method = "delete" } }
        local result = run { "--keep", "1", "--include", "redis", "--json" }
        assert.are.equal(1, result.status)
        local report = cjson.decode(result.stdout)
        assert.is_true(report.summary.failed > 0)
        for _, item in ipairs(report.images) do
          if item.result == "failed" then
            assert.are.equal(117, item.error.code)
          end
        end
      end)
    end
  end)
end
