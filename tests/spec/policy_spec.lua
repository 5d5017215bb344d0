-- The cleanup plan on hand-made inventories: what the keep and dangling rules
-- select, and how freed bytes count images shared by several tags.
local policy = require "syno.policy"

local function image(repository, tag, created, fields)
  local record = { id = "sha256:" .. repository .. tag, repository = repository, tag = tag,
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

describe("cleanup plan", function()
  it("keeps the newest tags", function()
    local plan = policy.plan({ image("nginx", "1", 100), image("nginx", "2", 200), image("nginx", "3", 300) },
      { keep = 2 })
    assert.are.same({ ["nginx:1"] = "delete", ["nginx:2"] = "keep", ["nginx:3"] = "keep" }, actions(plan))
  end)

  it("gives every entry a reason", function()
    local plan = policy.plan({ image("nginx", "1", 100), image("<none>", "<none>", 5) }, { keep = 0, dangling = true })
    for _, entry in ipairs(plan) do
      assert.is_string(entry.reason)
    end
  end)

  it("keeps images of unknown age", function()
    local plan = policy.plan({ image("app", "old", 100), image("app", "mystery", 0), image("app", "new", 300) },
      { keep = 2 })
    assert.are.equal("keep", actions(plan)["app:mystery"])
    assert.are.equal("keep", actions(plan)["app:new"])
    assert.are.equal("delete", actions(plan)["app:old"])
  end)

  it("never selects DSM images", function()
    local plan = policy.plan({ image("synology/ddsm", "7", 1, { is_ddsm = true }) }, { keep = 0, dangling = true })
    assert.are.equal("keep", plan[1].action)
  end)

  it("deletes dangling images only when asked", function()
    local images = { image("<none>", "<none>", 1) }
    assert.are.equal("keep", policy.plan(images, { keep = 1 })[1].action)
    assert.are.equal("delete", policy.plan(images, { keep = 1, dangling = true })[1].action)
  end)

  it("counts a shared image once", function()
    local shared = { id = "sha256:same", size = 500 }
    local plan = policy.plan({
      image("nginx", "1.27", 300, shared), image("nginx", "latest", 300, shared), image("nginx", "1.25", 100),
    }, { keep = 0 })
    assert.are.equal(600, policy.bytes_freed(plan, policy.deletions(plan)))
  end)

  it("counts nothing for an image another tag keeps", function()
    local shared = { id = "sha256:same", size = 500 }
    local plan = policy.plan({ image("a", "1", 300, shared), image("b", "1", 100, shared) }, { keep = 1 })
    local deletions = { [plan[2]] = true }
    assert.are.equal(0, policy.bytes_freed(plan, deletions))
  end)
end)
