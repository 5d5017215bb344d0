-- The ready-to-run scripts against the home-lab fixture.
local testenv = require "testenv"

local cleanup = testenv.root .. "/scripts/cleanup.lua"
local inventory = testenv.root .. "/scripts/inventory.lua"

local function planned(stdout, action)
  local names = {}
  for line in stdout:gmatch("[^\n]+") do
    local name = line:match("^  " .. action .. "%s+(%S+)")
    if name then
      names[#names + 1] = name
    end
  end
  return names
end

describe("scripts", function()
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

  it("inventory lists every repository", function()
    local result = testenv.run { args = { inventory }, env = testenv.sim_env(sim) }
    assert.are.equal(0, result.status, result.stderr)
    for _, item in ipairs(sim:state().images) do
      if item.repository ~= "<none>" and not item.is_ddsm then
        assert.matches("\n" .. item.repository:gsub("%p", "%%%0") .. "  %(", "\n" .. result.stdout)
      end
    end
    assert.matches("dangling images", result.stdout, 1, true)
    assert.matches("total: %d+ images in %d+ repositories, %d+ dangling", result.stdout)
  end)

  it("cleanup dry run plans and sends no write", function()
    local result = testenv.run { args = { cleanup, "--dry-run", "--keep", "2" }, env = testenv.sim_env(sim) }
    assert.are.equal(0, result.status, result.stderr)
    assert.matches("(dry run: nothing is deleted)", result.stdout, 1, true)
    for line in result.stdout:gmatch("[^\n]+") do
      if line:match("^  delete") or line:match("^  keep") then
        assert.is_true(#line > 60, line)
      end
    end
    assert.is_true(#planned(result.stdout, "delete") > 0)
    assert.matches("dry run: would delete", result.stderr, 1, true)
    for _, record in ipairs(sim:log()) do
      assert.is_true(record.http_method == "GET" or record.api == "SYNO.API.Auth",
        "write call under dry run: " .. tostring(record.method))
    end
  end)

  it("cleanup keeps the two newest tags", function()
    local result = testenv.run { args = { cleanup, "--dry-run", "--keep", "2" }, env = testenv.sim_env(sim) }
    local kept_per_repository = {}
    for _, name in ipairs(planned(result.stdout, "keep")) do
      local repository = name:match("^(.*):[^:/]+$")
      if repository then
        kept_per_repository[repository] = (kept_per_repository[repository] or 0) + 1
      end
    end
    local tags = {}
    for _, item in ipairs(sim:state().images) do
      if item.repository ~= "<none>" and not item.is_ddsm then
        tags[item.repository] = (tags[item.repository] or 0) + 1
      end
    end
    for repository, count in pairs(tags) do
      assert.are.equal(math.min(2, count), kept_per_repository[repository], repository)
    end
    -- Every nginx image kept is at least as new as every one deleted.
    local created = {}
    for _, item in ipairs(sim:state().images) do
      created[item.repository .. ":" .. item.tag] = item.created
    end
    local oldest_kept, newest_deleted = math.huge, 0
    for _, name in ipairs(planned(result.stdout, "keep")) do
      if name:match("^nginx:") then
        oldest_kept = math.min(oldest_kept, created[name])
      end
    end
    for _, name in ipairs(planned(result.stdout, "delete")) do
      if name:match("^nginx:") then
        newest_deleted = math.max(newest_deleted, created[name])
      end
    end
    assert.is_true(newest_deleted > 0)
    assert.is_true(oldest_kept >= newest_deleted)
  end)

  it("cleanup without dry run deletes exactly the plan", function()
    local dry = testenv.run { args = { cleanup, "--dry-run", "--keep", "2" }, env = testenv.sim_env(sim) }
    local plan = planned(dry.stdout, "delete")
    sim:reset()
    local result = testenv.run { args = { cleanup, "--keep", "2" }, env = testenv.sim_env(sim) }
    local deletes = sim:calls("SYNO.Docker.Image", "delete")
    local failed = select(2, result.stderr:gsub("cannot delete", ""))
    assert.are.equal(#plan, #deletes)
    assert.are.equal(failed > 0 and 1 or 0, result.status, result.stderr)
    assert.matches("deleted %d+ images", result.stdout)
  end)

  it("cleanup deletes dangling images", function()
    local result = testenv.run { args = { cleanup, "--keep", "5" }, env = testenv.sim_env(sim) }
    assert.are.equal(0, result.status, result.stderr)
    for _, item in ipairs(sim:state().images) do
      assert.are_not.equal("<none>", item.repository)
    end
  end)

  it("cleanup keeps dangling images with --no-dangling", function()
    local result = testenv.run { args = { cleanup, "--keep", "5", "--no-dangling" }, env = testenv.sim_env(sim) }
    assert.are.equal(0, result.status, result.stderr)
    assert.are.equal(0, #sim:calls("SYNO.Docker.Image", "delete"))
  end)

  it("cleanup never deletes DSM images", function()
    testenv.run { args = { cleanup, "--keep", "0" }, env = testenv.sim_env(sim) }
    for _, item in ipairs(sim:state().images) do
      assert.is_not_nil(item)
    end
    local ddsm_left = 0
    for _, item in ipairs(sim:state().images) do
      if item.is_ddsm then
        ddsm_left = ddsm_left + 1
      end
    end
    assert.is_true(ddsm_left >= 1)
  end)

  it("cleanup rejects a bad --keep", function()
    local result = testenv.run { args = { cleanup, "--keep", "two" }, env = testenv.sim_env(sim) }
    assert.are.equal(2, result.status)
    assert.matches('invalid --keep "two"', result.stderr, 1, true)
  end)
end)
