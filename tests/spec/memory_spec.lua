-- The Lua state's allocator (src/alloc.c) and the host's warn(): the real
-- binary runs a script that allocates, resizes and frees blocks of every
-- size class and across the boundary to malloc, then checks every value it
-- kept. SYNOSH_MALLOC=system runs the same script on malloc alone.
local testenv = require "testenv"

local run = testenv.run

-- Keeps 500 values of random kinds and sizes alive while replacing and
-- growing them 100,000 times, then prints a digest of what it kept.
local CHURN = [[
local seed = 12345
local function random(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n + 1
end

local live, expected = {}, {}
local function describe(value)
  local kind = type(value)
  if kind == "string" then
    return "s" .. #value .. value:sub(1, 3) .. value:sub(-3)
  elseif kind == "table" then
    local sum = 0
    for index = 1, #value do
      sum = sum + value[index]
    end
    return "t" .. #value .. ":" .. sum .. ":" .. tostring(value.name)
  elseif kind == "function" then
    return "f" .. value()
  elseif kind == "thread" then
    return "c" .. select(2, coroutine.resume(value))
  end
  return kind
end

for step = 1, 100000 do
  local slot = random(500)
  local kind = random(5)
  local value
  if kind == 1 then
    -- 1 to 600 bytes: every class, and past 256 to malloc
    value = string.rep(string.char(96 + random(26)), random(600)) .. step
  elseif kind == 2 then
    value = { name = "n" .. step }
    for index = 1, random(80) do
      value[index] = index * step
    end
  elseif kind == 3 and type(live[slot]) == "table" then
    -- grows the array part through several classes, or shrinks it
    value = live[slot]
    if random(2) == 1 then
      for _ = 1, random(40) do
        value[#value + 1] = step
      end
    else
      for index = #value, math.max(1, #value - random(40)), -1 do
        value[index] = nil
      end
    end
  elseif kind == 4 then
    local captured = step
    value = function() return captured end
  else
    value = coroutine.create(function()
      while true do
        coroutine.yield(step)
      end
    end)
  end
  live[slot] = value
  if kind ~= 5 then
    expected[slot] = describe(value)
  else
    expected[slot] = "c" .. step
  end
  if step % 10000 == 0 then
    collectgarbage()
  end
end

local bad, parts = 0, {}
for slot = 1, 500 do
  if live[slot] ~= nil then
    local actual = describe(live[slot])
    if actual ~= expected[slot] then
      bad = bad + 1
      io.stderr:write(string.format("slot %d: %s, expected %s\n", slot, actual, expected[slot]))
    end
    parts[#parts + 1] = actual
  end
end
print(#parts, bad, #table.concat(parts))
]]

describe("the Lua allocator", function()
  local dir

  setup(function()
    dir = testenv.tmpdir()
    testenv.write_file(dir .. "/churn.lua", CHURN)
  end)

  teardown(function()
    os.execute("rm -rf " .. testenv.quote(dir))
  end)

  it("keeps values intact across resizes", function()
    local classes = run { args = { dir .. "/churn.lua" }, env = { SYNOSH_MALLOC = false } }
    assert.are.equal("", classes.stderr)
    assert.are.equal(0, classes.status)
    local parts, bad = classes.stdout:match("^(%d+)\t(%d+)\t%d+\n$")
    assert.are.equal("0", bad)
    assert.is_true(tonumber(parts) > 400)

    local system = run { args = { dir .. "/churn.lua" }, env = { SYNOSH_MALLOC = "system" } }
    assert.are.equal(0, system.status)
    assert.are.equal(classes.stdout, system.stdout)
  end)

  it("reuses the blocks of collected userdata", function()
    -- string.rep of 2,000 bytes builds its result in a luaL_Buffer, a small
    -- userdata, and io.open makes one per file. Without reuse of such
    -- blocks, 400,000 of them grow the process by about 19 MB.
    local script = testenv.write_file(dir .. "/growth.lua", [[
for i = 1, 200000 do
  local text = ("x"):rep(2000)
  local file = assert(io.open("/dev/null"))
  file:close()
end
collectgarbage()
local status = assert(io.open("/proc/self/status")):read("a")
print(status:match("VmHWM:%s*(%d+)"))
]])
    local classes = run { args = { script }, env = { SYNOSH_MALLOC = false } }
    assert.are.equal(0, classes.status, classes.stderr)
    local system = run { args = { script }, env = { SYNOSH_MALLOC = "system" } }
    assert.are.equal(0, system.status, system.stderr)
    local classes_kib, system_kib = tonumber(classes.stdout), tonumber(system.stdout)
    assert.is_true(classes_kib < system_kib + 4096,
      string.format("peak %d KiB on the size classes against %d KiB on malloc", classes_kib, system_kib))
  end)

  it("lists 20,000 images on both allocators", function()
    local script = dir .. "/count.lua"
    testenv.write_file(script, [[
local nas <close> = require("syno").connect {}
local images = nas.image.list()
local bytes = 0
for _, image in ipairs(images) do
  bytes = bytes + #image.id + #image.repository + #image.tag + image.size % 1000
end
print(#images, bytes)
]])
    local fixture = dir .. "/inventory.json"
    assert(os.execute(string.format("python3 %s/tests/fixtures/gen_inventory.py --images 20000 > %s",
      testenv.quote(testenv.root), testenv.quote(fixture))))
    local sim = testenv.start_sim { fixture = fixture }
    finally(function() sim:stop() end)
    local classes = run { args = { script }, env = testenv.sim_env(sim, { SYNOSH_MALLOC = false }) }
    assert.are.equal(0, classes.status, classes.stderr)
    assert.matches("^%d+\t%d+\n$", classes.stdout)
    assert.is_true(tonumber(classes.stdout:match("^%d+")) > 19000)
    local system = run { args = { script }, env = testenv.sim_env(sim, { SYNOSH_MALLOC = "system" }) }
    assert.are.equal(0, system.status, system.stderr)
    assert.are.equal(classes.stdout, system.stdout)
  end)
end)

describe("warn()", function()
  it("prints warnings only after @on", function()
    local result = run { args = { "-e", 'warn("not shown"); warn("@on"); warn("disk ", "nearly full"); warn("@off"); warn("hidden")' } }
    assert.are.equal(0, result.status)
    assert.are.equal("synosh: warning: disk nearly full\n", testenv.strip_timestamps(result.stderr))
  end)

  it("cuts a long warning with an ellipsis", function()
    local result = run { args = { "-e", 'warn("@on"); warn(string.rep("w", 1500), string.rep("v", 600))' } }
    assert.are.equal(0, result.status)
    assert.are.equal("synosh: warning: " .. string.rep("w", 1023) .. "...\n",
      testenv.strip_timestamps(result.stderr))
  end)
end)
