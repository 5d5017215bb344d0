-- The interactive shell: lua/syno/repl.lua in-process, and the synosh binary in
-- a pseudo-terminal against the simulator.
local testenv = require "testenv"
local system = require "system"
local repl = require "syno.repl"

local ctrl_c, ctrl_d, tab = "\3", "\4", "\t"

--- Runs synosh in a pseudo-terminal through tests/helpers/pty_run.py.
-- steps: list of {expect = text}, {send = line} (typed with Enter),
-- {raw = bytes} (typed as they are) or {sleep = seconds}. Ctrl-D must follow
-- an expected prompt: typed while a statement runs, it reaches a terminal that
-- is not in raw mode, which turns it into an end-of-file marker. Returns
-- {status =, output =, seconds =, state =} where state is the XDG_STATE_HOME
-- folder, kept until cleanup() is called.
local function run_shell(options)
  local dir = testenv.tmpdir()
  local words = { "python3", testenv.root .. "/tests/helpers/pty_run.py", "--timeout", "15" }
  for index, step in ipairs(options.steps) do
    local path = string.format("%s/step%d", dir, index)
    if step.expect then
      table.insert(words, "--expect")
      table.insert(words, step.expect)
    elseif step.send then
      testenv.write_file(path, step.send .. "\n", "600")
      table.insert(words, "--send-file")
      table.insert(words, path)
    elseif step.raw then
      testenv.write_file(path, step.raw, "600")
      table.insert(words, "--send-raw-file")
      table.insert(words, path)
    else
      table.insert(words, "--sleep")
      table.insert(words, tostring(step.sleep))
    end
  end
  table.insert(words, "--")
  for _, word in ipairs(testenv.synosh_words()) do
    table.insert(words, word)
  end
  for _, arg in ipairs(options.args or {}) do
    table.insert(words, arg)
  end

  local env = {
    PATH = os.getenv("PATH"), HOME = dir, XDG_CONFIG_HOME = dir .. "/config",
    XDG_STATE_HOME = dir .. "/state", LANG = "C.UTF-8", TERM = "dumb", COLUMNS = "80",
  }
  testenv.pass_through(env)
  for key, value in pairs(options.env or {}) do
    env[key] = value or nil
  end
  local assignments = {}
  for key, value in pairs(env) do
    assignments[#assignments + 1] = key .. "=" .. testenv.quote(value)
  end
  local quoted = {}
  for index, word in ipairs(words) do
    quoted[index] = testenv.quote(word)
  end
  local command = string.format("env -i %s %s >%s/output 2>&1 </dev/null; echo $? >%s/status",
    table.concat(assignments, " "), table.concat(quoted, " "), dir, dir)
  local started = system.monotime()
  os.execute(command)
  return {
    status = tonumber(testenv.read_file(dir .. "/status")),
    output = testenv.read_file(dir .. "/output") or "",
    seconds = system.monotime() - started,
    state = dir .. "/state",
    cleanup = function()
      os.execute("rm -rf " .. testenv.quote(dir))
    end,
  }
end

--- Splits a history file written with timestamps into its entries.
local function history_entries(text)
  local entries = {}
  for line in text:gmatch("([^\n]*)\n") do
    if line:match("^#%d+$") then
      entries[#entries + 1] = {}
    elseif #entries > 0 then
      table.insert(entries[#entries], line)
    end
  end
  for index, lines in ipairs(entries) do
    entries[index] = table.concat(lines, "\n")
  end
  return entries
end

local function contains(text, part)
  return text:find(part, 1, true) ~= nil
end

describe("repl results", function()
  local cases = {
    { "no values", table.pack(), nil },
    { "number", table.pack(2), "2" },
    { "several scalars", table.pack(1, "a", true, nil), "1\ta\ttrue\tnil" },
    { "nil and message", table.pack(nil, "not there"), "error: not there" },
    { "flat table", table.pack { 3, b = "x", a = 1 }, '{ 3, a = 1, b = "x" }' },
    { "odd keys", table.pack { ["end"] = 1, ["a b"] = 2 }, '{ ["a b"] = 2, ["end"] = 1 }' },
  }
  for _, case in ipairs(cases) do
    it("format " .. case[1], function()
      assert.are.equal(case[3], repl.format_results(table.unpack(case[2], 1, case[2].n)))
    end)
  end

  it("format error object", function()
    local err = require("syno.errors").new { kind = "not_found", message = "image nginx:9 not found" }
    assert.are.equal("error: image nginx:9 not found", repl.format_results(err))
    assert.are.equal("error: image nginx:9 not found", repl.format_results(nil, err))
  end)

  it("format nested table on lines", function()
    local text = repl.format_value { name = "a", inner = { list = { 1, 2 }, deeper = { x = { y = 1 } } } }
    assert.are.equal("{ inner = { deeper = { x = { y = 1 } }, list = { 1, 2 } }, name = \"a\" }", text)
    local long = repl.format_value { text = string.rep("x", 70), inner = { 1 } }
    assert.are.equal('{\n  inner = { 1 },\n  text = "' .. string.rep("x", 70) .. '",\n}', long)
  end)

  it("format marks cycles", function()
    local t = { name = "loop" }
    t.self = t
    assert.are.equal('{ name = "loop", self = <cycle> }', repl.format_value(t))
  end)

  it("format stops at depth limit", function()
    local root = {}
    local node = root
    for _ = 1, repl.max_depth + 2 do
      node.next = {}
      node = node.next
    end
    node.last = true
    local text = repl.format_value(root)
    assert.is_true(contains(text, "{...}"))
    assert.is_false(contains(text, "last"))
  end)

  it("format quotes newlines", function()
    assert.are.equal('{ "a\\nb" }', repl.format_value { "a\nb" })
  end)
end)

describe("repl image table", function()
  local now = os.time()
  local images = {
    { repository = "nginx", tag = "1.25.3", id = "sha256:49c0ebc5d6f9aaaaaaaaaaaa", size = 157300000,
      created = now - 3 * 86400 },
    { repository = "registry.example.com/a/very/long/path/to/an/application/image", tag = "stable",
      id = "sha256:0123456789abcdef", size = 2500000, created = now - 7200 },
  }

  it("aligns columns with a header", function()
    local lines = {}
    for line in (repl.format_images(images, 80) .. "\n"):gmatch("(.-)\n") do
      lines[#lines + 1] = line
    end
    assert.are.equal(3, #lines)
    assert.matches("^REPOSITORY%s+TAG%s+ID%s+SIZE%s+CREATED$", lines[1])
    assert.matches("^nginx%s+1%.25%.3%s+49c0ebc5d6f9%s+157%.3 MB%s+3 days ago$", lines[2])
    assert.are.equal(lines[1]:find("TAG", 1, true), lines[2]:find("1.25.3", 1, true))
  end)

  it("fits 80 columns", function()
    for line in repl.format_images(images, 80):gmatch("[^\n]+") do
      assert.is_true(utf8.len(line) <= 80, line)
    end
    assert.is_true(contains(repl.format_images(images, 80), "…"))
  end)

  it("is used for image lists", function()
    local text = repl.format_results(images, 2)
    assert.matches("^REPOSITORY", text)
    assert.matches("\n2$", text)
    assert.is_false(repl.is_image_list { { repository = "a" } })
    assert.is_false(repl.is_image_list {})
  end)
end)

describe("repl completion", function()
  local base = setmetatable({ inherited = function() end, value = 1, __close = print, _internal = print }, {})
  local object = setmetatable({ own = 1, method = function() end }, { __index = base })
  local env = {
    image = { list = print, registry = { add = print, list = print } },
    imagine = 1, object = object, print = print,
  }

  local cases = {
    { "global prefix", "imag", { "image", "imagine" } },
    { "field prefix", "image.reg", { "image.registry" } },
    { "fields after dot", "image.registry.", { "image.registry.add", "image.registry.list" } },
    { "fields through __index", "object.", { "object.inherited", "object.method", "object.own",
                                              "object.value" } },
    { "methods after colon", "object:", { "object:inherited", "object:method" } },
    { "internal names when asked for", "object:_", { "object:__close", "object:_internal" } },
    { "unknown chain", "nothing.", {} },
    { "keyword", "retu", { "return" } },
    { "not a name", "1 + ", {} },
  }
  for _, case in ipairs(cases) do
    it("complete " .. case[1], function()
      assert.are.same(case[3], repl.complete(case[2], env))
    end)
  end

  it("complete string methods", function()
    local candidates = repl.complete("s:up", { s = "text" })
    assert.are.same({ "s:upper" }, candidates)
  end)
end)

describe("repl help and history filter", function()
  it("help lists functions", function()
    local text = repl.help_text()
    assert.is_true(contains(text, "image.list{offset = 0, limit = -1, show_dsm = false}"))
    assert.is_true(contains(text, "image.registry.add"))
    assert.is_true(contains(text, "syno.connect"))
  end)

  it("help covers every public function", function()
    local env = { image = require "syno.image", syno = require "syno" }
    local missing = {}
    local function visit(prefix, t, depth)
      for key, value in pairs(t) do
        if type(key) == "string" and not key:match("^_") then
          if type(value) == "function" and repl.help_text(value, env):match("^no help") then
            missing[#missing + 1] = prefix .. "." .. key
          elseif type(value) == "table" and depth < 2 then
            visit(prefix .. "." .. key, value, depth + 1)
          end
        end
      end
    end
    visit("image", env.image, 1)
    visit("syno", env.syno, 1)
    table.sort(missing)
    assert.are.same({}, missing)
  end)

  it("help by name and value", function()
    local fn = function() end
    local env = { image = { list = fn } }
    local by_value = repl.help_text(fn, env)
    assert.are.equal(repl.help_text("image.list"), by_value)
    assert.is_true(contains(by_value, "show_dsm  boolean, default false"))
    assert.is_true(contains(by_value, "example: image.list{limit = 10}"))
  end)

  it("help for unknown subject", function()
    assert.matches("^no help for nothing", repl.help_text("nothing"))
  end)

  it("history rejects password lines", function()
    assert.is_false(repl.history_allowed('syno.connect{password = "x"}'))
    assert.is_false(repl.history_allowed("PASSWD = 1"))
    assert.is_true(repl.history_allowed("image.list()"))
  end)
end)

describe("interactive shell", function()
  local sim, env, prompt

  setup(function()
    sim = testenv.start_sim()
    env = testenv.sim_env(sim)
    prompt = "synosh admin@" .. sim.url:gsub("^http://", "") .. "> "
  end)

  teardown(function()
    sim:stop()
  end)

  before_each(function()
    sim:reset()
  end)

  it("prints expressions and survives errors", function()
    local result = run_shell { env = env, steps = {
      { expect = "synosh> " }, { send = "1+1" },
      { expect = "synosh> " }, { send = "error('boom')" },
      { expect = "synosh> " }, { send = "{1, 'a'}" },
      { expect = "synosh> " }, { send = "json.encode{syno ~= nil, image ~= nil}" },
      { expect = "synosh> " }, { raw = ctrl_d },
    } }
    result.cleanup()
    assert.are.equal(0, result.status, result.output)
    assert.is_true(contains(result.output, "[true,true]\r\n"), result.output)
    assert.is_true(contains(result.output, "1+1\r\n2\r\n"), result.output)
    assert.is_true(contains(result.output, "synosh: error: stdin:1: boom\r\n"), result.output)
    assert.is_true(contains(result.output, '{ 1, "a" }\r\n'), result.output)
  end)

  it("suggests the name a typo meant", function()
    local result = run_shell { env = env, steps = {
      { expect = "synosh> " }, { send = "image.lst()" },
      { expect = "synosh> " }, { send = "imgae.list()" },
      { expect = "synosh> " }, { send = "image.registry.lsit()" },
      { expect = "synosh> " }, { send = "image.zzzzzz()" },
      { expect = "synosh> " }, { raw = ctrl_d },
    } }
    result.cleanup()
    assert.are.equal(0, result.status, result.output)
    assert.is_true(contains(result.output, "(field 'lst'); did you mean image.list?\r\n"), result.output)
    assert.is_true(contains(result.output, "(global 'imgae'); did you mean image?\r\n"), result.output)
    assert.is_true(contains(result.output, "(field 'lsit'); did you mean image.registry.list?\r\n"),
      result.output)
    assert.is_true(contains(result.output, "(field 'zzzzzz')\r\n"), result.output)
  end)

  it("reads a function over three lines", function()
    local result = run_shell { env = env, steps = {
      { expect = "synosh> " }, { send = "function double(x)" },
      { expect = "...> " }, { send = "  return x * 2" },
      { expect = "...> " }, { send = "end" },
      { expect = "synosh> " }, { send = "double(21)" },
      { expect = "synosh> " }, { send = 'token = "hunter2" -- Password' },
      { expect = "synosh> " }, { raw = ctrl_d },
    } }
    assert.are.equal(0, result.status, result.output)
    assert.is_true(contains(result.output, "double(21)\r\n42\r\n"), result.output)

    local path = result.state .. "/synosh/history"
    local history = testenv.read_file(path) or ""
    local mode = require("syno.core").file_mode(path)
    local directory_mode = require("syno.core").file_mode(result.state .. "/synosh")
    result.cleanup()
    assert.are.equal(tonumber("600", 8), mode)
    assert.are.equal(tonumber("700", 8), directory_mode)
    assert.are.same({ "function double(x)\n  return x * 2\nend", "double(21)" }, history_entries(history))
    assert.is_false(contains(history, "hunter2"))
  end)

  it("keeps the last 1000 history entries", function()
    local state = testenv.tmpdir()
    os.execute("mkdir -p " .. testenv.quote(state .. "/synosh"))
    local old = {}
    for index = 1, 1005 do
      old[#old + 1] = string.format("#%d\nold = %d\n", 1700000000 + index, index)
    end
    testenv.write_file(state .. "/synosh/history", table.concat(old), "600")
    local result = run_shell { env = { XDG_STATE_HOME = state }, steps = {
      { expect = "synosh> " }, { send = "new = 1" },
      { expect = "synosh> " }, { raw = ctrl_d },
    } }
    result.cleanup()
    local entries = history_entries(testenv.read_file(state .. "/synosh/history") or "")
    os.execute("rm -rf " .. testenv.quote(state))
    assert.are.equal(0, result.status, result.output)
    assert.are.equal(1000, #entries)
    assert.are.equal("old = 7", entries[1])
    assert.are.equal("new = 1", entries[1000])
  end)

  it("reads standard input with -i", function()
    local result = testenv.run { args = { "-i" }, stdin = "1+1\nfunction f()\nreturn 'f'\nend\nf()\n" }
    assert.are.equal(0, result.status, result.stderr)
    assert.are.equal("2\nf\n", result.stdout)
  end)

  it("completes names with Tab", function()
    local result = run_shell { env = env, steps = {
      { expect = "synosh> " }, { raw = "image.reg" .. tab },
      { expect = "image.registry" }, { raw = "." .. tab .. tab },
      { expect = "list" }, { send = "list()" },
      { expect = prompt }, { raw = ctrl_d },
    } }
    result.cleanup()
    assert.are.equal(0, result.status, result.output)
    assert.matches("add%s+list", result.output)
    assert.is_true(contains(result.output, "image.registry.list()\r\n"), result.output)
  end)

  it("shows user and host after login", function()
    local result = run_shell { env = env, steps = {
      { expect = "synosh> " }, { send = "image.list()" },
      { expect = prompt }, { raw = ctrl_d },
    } }
    result.cleanup()
    assert.are.equal(0, result.status, result.output)
    local lines = {}
    for line in result.output:gmatch("[^\r\n]+") do
      lines[#lines + 1] = line
    end
    local header
    for index, line in ipairs(lines) do
      if line:match("^REPOSITORY%s+TAG%s+ID%s+SIZE%s+CREATED$") then
        header = index
      end
    end
    assert.is_not_nil(header, result.output)
    assert.matches("%s%d+%.%d MB%s", lines[header + 1] .. " " .. table.concat(lines, " ", header + 1))
    for index = header, #lines - 1 do
      assert.is_true(utf8.len(lines[index]) <= 80, lines[index])
    end
  end)

  it("Ctrl-C clears the line", function()
    local result = run_shell { env = env, steps = {
      { expect = "synosh> " }, { raw = "abc" .. ctrl_c },
      { expect = "synosh> " }, { send = "2+3" },
      { expect = "\r\n5\r\n" }, { expect = "synosh> " }, { raw = ctrl_d },
    } }
    result.cleanup()
    assert.are.equal(0, result.status, result.output)
    assert.is_false(contains(result.output, "abc2+3"))
  end)

  it("Ctrl-C aborts a slow call", function()
    sim:faults { { kind = "delay", seconds = 20, api = "SYNO.Docker.Image" } }
    local result = run_shell { env = env, steps = {
      { expect = "synosh> " }, { send = "image.list()" },
      { sleep = 1 }, { raw = ctrl_c },
      { expect = "interrupted" }, { expect = "> " }, { send = "1+1" },
      { expect = "\r\n2\r\n" }, { expect = "> " }, { raw = ctrl_d },
    } }
    result.cleanup()
    assert.are.equal(0, result.status, result.output)
    assert.is_true(contains(result.output, "synosh: error: interrupted\r\n"), result.output)
    -- The simulator logs a call only once it responds, after its 20 s delay.
    -- An empty log means the shell returned without waiting for the response.
    assert.are.equal(0, #sim:calls("SYNO.Docker.Image", "list"))
    assert.are.equal(0, sim:stats().sessions)
  end)

  it("Ctrl-C stops a Lua loop", function()
    local result = run_shell { env = env, steps = {
      { expect = "synosh> " }, { send = "while true do end" },
      { sleep = 0.5 }, { raw = ctrl_c },
      { expect = "interrupted" }, { expect = "synosh> " }, { send = "1+1" },
      { expect = "\r\n2\r\n" }, { expect = "> " }, { raw = ctrl_d },
    } }
    result.cleanup()
    assert.are.equal(0, result.status, result.output)
    assert.is_true(contains(result.output, "synosh: error: interrupted\r\n"), result.output)
  end)

  it("shows tracebacks only with --verbose", function()
    local steps = {
      { expect = "synosh> " }, { send = "error('boom')" },
      { expect = "boom" }, { expect = "synosh> " }, { raw = ctrl_d },
    }
    local quiet = run_shell { env = env, steps = steps }
    quiet.cleanup()
    local verbose = run_shell { env = env, args = { "--verbose" }, steps = steps }
    verbose.cleanup()
    assert.are.equal(0, quiet.status, quiet.output)
    assert.are.equal(0, verbose.status, verbose.output)
    assert.is_false(contains(quiet.output, "stack traceback:"), quiet.output)
    assert.is_true(contains(verbose.output, "stack traceback:"), verbose.output)
  end)

  it("help shows a function", function()
    local result = run_shell { env = env, steps = {
      { expect = "synosh> " }, { send = "help(image.list)" },
      { expect = "example: " }, { expect = "synosh> " }, { raw = ctrl_d },
    } }
    result.cleanup()
    assert.are.equal(0, result.status, result.output)
    assert.is_true(contains(result.output, "image.list{offset = 0, limit = -1, show_dsm = false}\r\n"),
      result.output)
  end)

  it("Ctrl-D exits and logs out", function()
    local result = run_shell { env = env, steps = {
      { expect = "synosh> " }, { send = "#image.list()" },
      { expect = prompt }, { raw = ctrl_d },
    } }
    result.cleanup()
    assert.are.equal(0, result.status, result.output)
    local stats = sim:stats()
    assert.are.equal(1, stats.logins)
    assert.are.equal(1, stats.logouts)
    assert.are.equal(0, stats.sessions)
  end)

  it("SIGTERM ends the shell", function()
    local result = run_shell { env = env, steps = {
      { expect = "synosh> " }, { send = "image.list{limit = 1}" },
      { expect = prompt }, { send = "os.execute('kill -TERM ' .. io.open('/proc/self/stat'):read('n'))" },
    } }
    result.cleanup()
    assert.are.equal(143, result.status, result.output)
    assert.is_true(contains(result.output, "synosh: error: interrupted by SIGTERM"), result.output)
    assert.are.equal(0, sim:stats().sessions)
  end)

  it("opens after -e with -i", function()
    local result = run_shell { env = env, args = { "-e", "x = 40", "-i" }, steps = {
      { expect = "synosh> " }, { send = "x + 2" },
      { expect = "\r\n42\r\n" }, { expect = "synosh> " }, { raw = ctrl_d },
    } }
    result.cleanup()
    assert.are.equal(0, result.status, result.output)
  end)
end)
