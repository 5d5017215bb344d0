-- Writes are never sent twice: after a lost response synosh reads the state
-- back to learn whether the write happened.
local testenv = require "testenv"

for _, dialect in ipairs { "document", "container-manager" } do
  describe("lost answers on the " .. dialect .. " dialect", function()
    local sim, nas

    setup(function()
      sim = testenv.start_sim { args = { "--dialect", dialect } }
    end)

    teardown(function()
      sim:stop()
    end)

    before_each(function()
      sim:reset()
      nas = testenv.connect(sim)
      nas.image.list() -- the connection is now open and reused
    end)

    after_each(function()
      nas:close()
    end)

    local function present(name)
      for _, item in ipairs(sim:state().images) do
        if item.repository .. ":" .. item.tag == name then
          return true
        end
      end
      return false
    end

    it("counts a delete that happened before the connection dropped", function()
      sim:faults { { kind = "drop", apply = true, api = "SYNO.Docker.Image", method = "delete" } }
      assert.is_true(nas.image.delete("nginx:1.25.3"))
      assert.is_false(present("nginx:1.25.3"))
      -- One delete reached the NAS; the state was read back, not the delete resent.
      assert.are.equal(1, #sim:calls("SYNO.Docker.Image", "delete"))
    end)

    it("reports a delete that did not happen when the connection dropped", function()
      sim:faults { { kind = "drop", api = "SYNO.Docker.Image", method = "delete" } }
      local ok, err = pcall(nas.image.delete, "nginx:1.25.3")
      assert.is_false(ok)
      assert.are.equal("network", err.kind)
      assert.matches("nginx:1.25.3 is still on the NAS, so it was not deleted", err.message, 1, true)
      assert.is_true(present("nginx:1.25.3"))
      assert.are.equal(1, #sim:calls("SYNO.Docker.Image", "delete"))
    end)

    it("decides each image of a batch after a lost answer", function()
      sim:faults { { kind = "cut", api = "SYNO.Docker.Image", method = "delete" } }
      local images = {}
      for _, item in ipairs(nas.image.list()) do
        if item.repository == "redis" or item.repository == "alpine" then
          images[#images + 1] = item
        end
      end
      local results = nas.image.delete_many(images)
      local deleted = 0
      for index, result in ipairs(results) do
        local name = images[index].repository .. ":" .. images[index].tag
        assert.are.equal(not present(name), result.ok, name)
        if result.ok then
          deleted = deleted + 1
        end
      end
      assert.is_true(deleted >= 1)
    end)
  end)
end
