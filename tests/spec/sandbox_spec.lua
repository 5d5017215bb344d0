-- --sandbox: each way out of a script is blocked with a clear error, and what
-- a policy script needs (reading, the NAS, --notify-command) still works.
local testenv = require "testenv"

describe("--sandbox", function()
  local sim, dir

  setup(function()
    sim = testenv.start_sim()
  end)

  teardown(function()
    sim:stop()
  end)

  before_each(function()
    dir = testenv.tmpdir()
  end)

  after_each(function()
    os.execute("rm -rf " .. testenv.quote(dir))
  end)

  local function sandboxed(code, flag, extra_env)
    return testenv.run { args = { flag or "--sandbox", "-e", code }, env = testenv.sim_env(sim, extra_env) }
  end

  local blocked = {
    { "os.execute", "os.execute('touch " .. "/tmp/synosh-sandbox-probe')", "os.execute is disabled by --sandbox" },
    { "io.popen", "io.popen('id')", "io.popen is disabled by --sandbox" },
    { "package.loadlib", "package.loadlib('libc.so.6', 'puts')", "package.loadlib is disabled by --sandbox" },
    { "os.tmpname", "os.tmpname()", "os.tmpname is disabled by --sandbox" },
    { "a binary chunk", "load(string.dump(function() end), 'x', 'b')", "load with mode b is disabled" },
    { "syno.notify with a command", "require('syno').notify({}, {command = 'id'})",
      "syno.notify with a command is disabled by --sandbox" },
    { "a request to another host", "require('syno.core').http_client{}:request('GET', 'http://127.0.0.2:9/')",
      "a request to http://127.0.0.2:9 is disabled by --sandbox; scripts may reach only " },
  }
  for _, case in ipairs(blocked) do
    it("blocks " .. case[1], function()
      local result = sandboxed(case[2])
      assert.are.equal(1, result.status)
      assert.matches("synosh: error: " .. case[3], result.stderr, 1, true)
      assert.are.equal(1, select(2, result.stderr:gsub("\n", "")), result.stderr)
    end)
  end

  it("lets the same calls run without --sandbox", function()
    local probe = dir .. "/probe"
    local result = testenv.run { args = { "-e", string.format(
      "os.execute('touch %s'); assert(io.popen('echo hi'):read('l') == 'hi'); assert(debug.getupvalue)", probe) } }
    assert.are.equal(0, result.status, result.stderr)
    assert.is_not_nil(testenv.read_file(probe))
  end)

  it("blocks C modules", function()
    testenv.write_file(dir .. "/evil.so", "not really a shared library")
    local result = sandboxed("require 'evil'", nil, { LUA_CPATH = dir .. "/?.so" })
    assert.are.equal(1, result.status)
    assert.matches('C modules such as "evil" are disabled by --sandbox', result.stderr, 1, true)
    -- Without the sandbox the C searcher does try the file.
    result = testenv.run { args = { "-e", "require 'evil'" }, env = { LUA_CPATH = dir .. "/?.so" } }
    assert.matches("evil.so", result.stderr, 1, true)
    assert.is_nil(result.stderr:find("disabled by --sandbox", 1, true))
  end)

  it("blocks the debug library but traceback", function()
    local result = sandboxed("print(type(debug.traceback())); debug.getupvalue(print, 1)")
    assert.are.equal(1, result.status)
    assert.are.equal("string\n", result.stdout)
    assert.matches("debug.getupvalue is disabled by --sandbox", result.stderr, 1, true)
  end)

  it("blocks every file write without a directory", function()
    local target = dir .. "/out.txt"
    for _, code in ipairs {
      string.format("io.open(%q, 'w')", target), string.format("io.open(%q, 'a')", target),
      string.format("io.open(%q, 'r+')", target), string.format("io.output(%q)", target),
      string.format("os.remove(%q)", target), string.format("require('syno').lock(%q)", target),
    } do
      local result = sandboxed(code)
      assert.are.equal(1, result.status, code)
      assert.matches("(writing files) is disabled by --sandbox; give --sandbox=DIR", result.stderr, 1, true)
    end
    assert.is_nil(testenv.read_file(target))
  end)

  it("allows writes only under --sandbox=DIR", function()
    os.execute("mkdir -p " .. testenv.quote(dir .. "/allowed"))
    local flag = "--sandbox=" .. dir .. "/allowed"
    local result = sandboxed(string.format(
      "local f = assert(io.open(%q, 'w')); f:write('ok'); f:close(); assert(os.rename(%q, %q))",
      dir .. "/allowed/a.txt", dir .. "/allowed/a.txt", dir .. "/allowed/b.txt"), flag)
    assert.are.equal(0, result.status, result.stderr)
    assert.are.equal("ok", testenv.read_file(dir .. "/allowed/b.txt"))
    for _, path in ipairs { dir .. "/outside.txt", dir .. "/allowed/../outside.txt" } do
      result = sandboxed(string.format("io.open(%q, 'w')", path), flag)
      assert.are.equal(1, result.status)
      assert.matches("outside " .. dir .. "/allowed is disabled by --sandbox", result.stderr, 1, true)
    end
    -- A symlink inside the directory does not lead out of it.
    os.execute(string.format("ln -s %s %s", testenv.quote(dir), testenv.quote(dir .. "/allowed/link")))
    result = sandboxed(string.format("io.open(%q, 'w')", dir .. "/allowed/link/escape.txt"), flag)
    assert.are.equal(1, result.status)
    assert.is_nil(testenv.read_file(dir .. "/escape.txt"))
  end)

  it("rejects a --sandbox directory that does not exist", function()
    local result = sandboxed("print('ran')", "--sandbox=" .. dir .. "/missing")
    assert.are.equal(2, result.status)
    assert.matches("--sandbox=" .. dir .. "/missing: no such directory", result.stderr, 1, true)
    assert.are.equal("", result.stdout)
  end)

  it("still runs a policy against the NAS, reads files and notifies", function()
    local result = testenv.run { args = { "--sandbox", "--notify-command", "cat > " .. dir .. "/report.json",
      testenv.root .. "/scripts/cleanup.lua", "--keep", "1", "--include", "redis" }, env = testenv.sim_env(sim) }
    assert.are.equal(0, result.status, result.stderr)
    assert.matches("deleted %d+ of %d+ planned images", result.stdout)
    assert.matches('"kind": *"cleanup"', testenv.read_file(dir .. "/report.json"))
  end)
end)
