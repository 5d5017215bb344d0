-- The synosh binary as a user runs it: options, arg, exit statuses, profiles,
-- logout at exit and signals.
local testenv = require "testenv"

local run = testenv.run

describe("command line", function()
  it("help lists options and exit statuses", function()
    local result = run { args = { "--help" } }
    assert.are.equal(0, result.status)
    assert.matches("--password-file FILE", result.stdout, 1, true)
    assert.matches("--dialect NAME", result.stdout, 1, true)
    assert.matches("--remember-device NAME", result.stdout, 1, true)
    assert.matches("4    the NAS could not be reached", result.stdout, 1, true)
  end)

  it("version names synosh, Lua and libcurl", function()
    local result = run { args = { "-v" } }
    assert.are.equal(0, result.status)
    assert.matches("^synosh %d+%.%d+%.%d+ %(Lua 5%.4%.%d+, libcurl ", result.stdout)
  end)

  it("unknown option exits 2", function()
    local result = run { args = { "--bogus" } }
    assert.are.equal(2, result.status)
    assert.are.equal("synosh: error: unknown option --bogus; an option of the script goes after the "
      .. "script's name (see synosh --help)\n", result.stderr)
  end)

  it("rejects an option given twice with different values", function()
    local result = run { args = { "--url", "https://nas-a:5001", "--url=https://nas-b:5001", "-e", "" } }
    assert.are.equal(2, result.status)
    assert.matches("option --url is given twice with different values; give it once", result.stderr, 1, true)
    result = run { args = { "--timeout", "30", "--timeout", "30", "-e", "" } }
    assert.are.equal(0, result.status, result.stderr)
  end)

  it("help has no double blank line", function()
    local result = run { args = { "--help" } }
    assert.is_nil(result.stdout:find("\n\n\n", 1, true))
  end)

  it("password option is rejected", function()
    for _, form in ipairs { { "--password", "secret" }, { "--password=secret" } } do
      local result = run { args = form }
      assert.are.equal(2, result.status)
      assert.matches("--password is not accepted", result.stderr, 1, true)
      assert.is_nil(result.stderr:find("secret", 1, true))
    end
  end)

  it("missing script exits 2", function()
    local result = run { args = { "/nonexistent/script.lua" } }
    assert.are.equal(2, result.status)
    assert.matches("cannot open script /nonexistent/script.lua", result.stderr, 1, true)
  end)

  it("invalid timeout exits 2", function()
    local result = run { args = { "--timeout", "soon", "-e", "" } }
    assert.are.equal(2, result.status)
    assert.matches('invalid --timeout "soon"', result.stderr, 1, true)
  end)

  it("runs -e chunks in order", function()
    local result = run { args = { "-e", "x = 1", "-e", "print(x + 1)" } }
    assert.are.equal(0, result.status)
    assert.are.equal("2\n", result.stdout)
  end)

  it("loads a module with -l", function()
    local result = run { args = { "-l", "cjson", "-e", "print(cjson.encode({1}))" } }
    assert.are.equal("[1]\n", result.stdout)
  end)

  it("passes script arguments as arg and ...", function()
    local dir = testenv.tmpdir()
    local script = testenv.write_file(dir .. "/args.lua",
      "print(arg[0], arg[1], arg[2], #arg, select('#', ...), ...)")
    local result = run { args = { script, "one", "two words" } }
    assert.are.equal(0, result.status)
    assert.are.equal(script .. "\tone\ttwo words\t2\t2\tone\ttwo words\n", result.stdout)
  end)

  it("runs standard input when it is not a terminal", function()
    local result = run { stdin = "print('from stdin', ...)" }
    assert.are.equal(0, result.status)
    assert.are.equal("from stdin\n", result.stdout)
  end)

  it("runs standard input for -", function()
    local result = run { args = { "-", "a" }, stdin = "print(...)" }
    assert.are.equal("a\n", result.stdout)
  end)

  it("script error exits 1 with one line", function()
    local result = run { args = { "-e", "error('boom')" } }
    assert.are.equal(1, result.status)
    assert.are.equal("synosh: error: (command line):1: boom\n", result.stderr)
  end)

  it("syntax error exits 1", function()
    local result = run { args = { "-e", "x = = 1" } }
    assert.are.equal(1, result.status)
    assert.matches("^synosh: error: ", result.stderr)
  end)

  it("os.exit keeps the status", function()
    assert.are.equal(7, run({ args = { "-e", "os.exit(7)" } }).status)
    assert.are.equal(1, run({ args = { "-e", "os.exit(false)" } }).status)
  end)

  it("preloads cjson without package.path", function()
    local result = run { args = { "-e", "package.path = '' package.cpath = '' print(require('cjson.safe').decode('[1'))" } }
    assert.are.equal(0, result.status)
    assert.matches("^nil", result.stdout)
  end)

  it("package.path overrides embedded modules", function()
    local dir = testenv.tmpdir()
    os.execute("mkdir -p " .. dir .. "/syno")
    testenv.write_file(dir .. "/syno/format.lua", "return {overridden = true}")
    local result = run { args = { "-e", "package.path = '" .. dir .. "/?.lua' print(require('syno.format').overridden)" } }
    assert.are.equal("true\n", result.stdout)
  end)
end)

describe("exit status", function()
  local sim, tls_sim

  setup(function()
    sim = testenv.start_sim()
    tls_sim = testenv.start_sim { tls = true }
  end)

  teardown(function()
    sim:stop()
    tls_sim:stop()
  end)

  before_each(function()
    sim:reset()
  end)

  local list = { "-e", "print(#require('syno.image').list())" }

  it("is 0 for a successful run", function()
    local result = run { args = list, env = testenv.sim_env(sim) }
    assert.are.equal(0, result.status, result.stderr)
    assert.matches("^%d+\n$", result.stdout)
  end)

  it("is 3 for a wrong password", function()
    local env = testenv.sim_env(sim, { SYNO_PASSWORD_FILE = false, SYNO_PASSWORD = "wrong password" })
    local result = run { args = list, env = env }
    assert.are.equal(3, result.status)
    assert.matches("^synosh: error: login to .* as admin failed: no such account or incorrect password", result.stderr)
    assert.is_nil(result.stderr:find("wrong password", 1, true))
  end)

  it("is 3 when an OTP is required", function()
    local env = testenv.sim_env(sim, { SYNO_USER = "otpuser", SYNO_PASSWORD_FILE = false,
                                       SYNO_PASSWORD = testenv.users.otpuser.password })
    local result = run { args = list, env = env }
    assert.are.equal(3, result.status)
    assert.matches("--otp CODE", result.stderr, 1, true)
  end)

  it("is 3 for a disabled account", function()
    local env = testenv.sim_env(sim, { SYNO_USER = "disabled", SYNO_PASSWORD_FILE = false,
                                       SYNO_PASSWORD = testenv.users.disabled.password })
    local result = run { args = list, env = env }
    assert.are.equal(3, result.status)
  end)

  it("is 4 when nothing listens", function()
    local env = testenv.sim_env(sim, { SYNO_URL = "http://127.0.0.1:1" })
    local result = run { args = list, env = env }
    assert.are.equal(4, result.status)
    assert.matches("cannot reach http://127.0.0.1:1", result.stderr, 1, true)
  end)

  it("is 4 for an untrusted certificate", function()
    local env = testenv.sim_env(tls_sim, { SYNO_CACERT = false })
    local result = run { args = list, env = env }
    assert.are.equal(4, result.status)
    assert.matches("--cacert FILE", result.stderr, 1, true)
  end)

  it("is 0 with --cacert", function()
    local env = testenv.sim_env(tls_sim, { SYNO_CACERT = false })
    local result = run { args = { "--cacert", testenv.certs .. "/ca.pem", table.unpack(list) }, env = env }
    assert.are.equal(0, result.status, result.stderr)
  end)

  it("warns once with --insecure", function()
    local env = testenv.sim_env(tls_sim, { SYNO_CACERT = false })
    local result = run { args = { "--insecure", "-e",
      "local image = require('syno.image') image.list() image.list() print('ok')" }, env = env }
    assert.are.equal(0, result.status, result.stderr)
    local _, count = result.stderr:gsub("TLS certificate of .- is not verified", "")
    assert.are.equal(1, count)
  end)

  it("is 4 when the request times out", function()
    sim:faults { { kind = "delay", seconds = 3, api = "SYNO.Docker.Image" } }
    local result = run { args = { "--timeout", "1", table.unpack(list) }, env = testenv.sim_env(sim) }
    assert.are.equal(4, result.status)
    assert.matches("timed out", result.stderr, 1, true)
  end)

  it("is 1 for an uncaught API error", function()
    sim:faults { { kind = "dsm_error", code = 105, api = "SYNO.Docker.Image" } }
    local result = run { args = list, env = testenv.sim_env(sim) }
    assert.are.equal(1, result.status)
    assert.are.equal("synosh: error: SYNO.Docker.Image list failed: DSM error 105 (session has no permission)\n",
      result.stderr)
  end)

  it("is 1 for an HTML answer", function()
    sim:faults { { kind = "html", api = "SYNO.Docker.Image" } }
    local result = run { args = list, env = testenv.sim_env(sim) }
    assert.are.equal(1, result.status)
    assert.matches("text/html", result.stderr, 1, true)
  end)

  it("is 2 for an unreadable CA file", function()
    for _, path in ipairs { "/nonexistent/ca.pem", testenv.root .. "/README.md" } do
      local env = testenv.sim_env(tls_sim, { SYNO_CACERT = path })
      local result = run { args = list, env = env }
      assert.are.equal(2, result.status, result.stderr)
      assert.matches("cacert", result.stderr, 1, true)
    end
  end)

  it("is 2 for a URL with credentials", function()
    local result = run { args = { "--url", "https://admin:hunter2@nas.local:5001", table.unpack(list) },
                         env = testenv.sim_env(sim, { SYNO_URL = false }) }
    assert.are.equal(2, result.status)
    assert.matches("credentials do not belong in the URL", result.stderr, 1, true)
    assert.is_nil(result.stderr:find("hunter2", 1, true))
  end)

  it("is 0 for script help without settings", function()
    local result = run { args = { testenv.root .. "/scripts/inventory.lua", "--help" } }
    assert.are.equal(0, result.status, result.stderr)
    assert.matches("usage:", result.stdout, 1, true)
  end)

  it("is 2 for an invalid reference", function()
    local result = run { args = { "-e", "require('syno.image').delete('Nginx:1.25')" }, env = testenv.sim_env(sim) }
    assert.are.equal(2, result.status)
    assert.matches('invalid reference "Nginx:1.25"', result.stderr, 1, true)
    assert.are.equal(0, #sim:calls("SYNO.Docker.Image", "delete"))
  end)

  it("is 2 without a URL", function()
    local result = run { args = list }
    assert.are.equal(2, result.status)
    assert.matches("no NAS URL", result.stderr, 1, true)
  end)

  it("asks for the password on a terminal", function()
    local env = testenv.sim_env(sim, { SYNO_PASSWORD_FILE = false })
    local result = testenv.run_pty {
      args = { "-e", "print('images: ' .. #require('syno.image').list())" }, env = env,
      dialog = { { expect = "Password for admin at " .. sim.url .. ": ", send = testenv.password } },
    }
    assert.are.equal(0, result.status, result.output)
    assert.matches("images: %d+", result.output)
    assert.is_nil(result.output:find(testenv.password, 1, true))
  end)

  it("asks for a two-step code on a terminal", function()
    local otp_user = testenv.users.otpuser
    local env = testenv.sim_env(sim, { SYNO_USER = "otpuser", SYNO_PASSWORD_FILE = false })
    local result = testenv.run_pty {
      args = { "-e", "print('images: ' .. #require('syno.image').list())" }, env = env,
      dialog = { { expect = "Password for otpuser at " .. sim.url .. ": ", send = otp_user.password },
                 { expect = "Two-step verification code for otpuser: ", send = otp_user.otp } },
    }
    assert.are.equal(0, result.status, result.output)
    assert.matches("images: %d+", result.output)
    local logins = sim:calls("SYNO.API.Auth", "login")
    assert.are.equal(2, #logins)
    assert.are.equal(otp_user.otp, logins[2].body.otp_code)
  end)

  it("is 2 without a password and a terminal", function()
    local env = testenv.sim_env(sim, { SYNO_PASSWORD_FILE = false })
    local result = run { args = list, env = env }
    assert.are.equal(2, result.status)
    assert.matches("no password for admin", result.stderr, 1, true)
  end)
end)

describe("secrets", function()
  local sim

  setup(function()
    sim = testenv.start_sim()
  end)

  teardown(function()
    sim:stop()
  end)

  it("never appear in output, URLs or argv", function()
    local script = [[
      local syno = require "syno"
      local image = require "syno.image"
      image.list()
      image.delete("redis:7.2")
      image.registry.add{name = "team", url = "https://registry.lan:5000", username = "ci",
                         password = "registry-secret"}
      print(syno.default(), syno.default().session)
      local ok, err = pcall(syno.connect, {password = "wrong-secret"})
      print(err)
    ]]
    local env = testenv.sim_env(sim)
    local result = run { args = { "--verbose", "-e", script }, env = env }
    assert.are.equal(0, result.status, result.stderr)
    assert.matches("POST " .. sim.url .. "/webapi/entry.cgi (SYNO.API.Auth login)", result.stderr, 1, true)

    local secrets = { testenv.password, "registry-secret", "wrong-secret" }
    for _, record in ipairs(sim:log()) do
      if record.headers.Cookie then
        secrets[#secrets + 1] = record.headers.Cookie:match("id=([^;]+)")
      end
      if record.headers["X-SYNO-TOKEN"] then
        secrets[#secrets + 1] = record.headers["X-SYNO-TOKEN"]
      end
    end
    assert.is_true(#secrets > 3)
    for _, secret in ipairs(secrets) do
      assert.is_nil(result.stdout:find(secret, 1, true), "stdout shows a secret")
      assert.is_nil(result.stderr:find(secret, 1, true), "stderr shows a secret")
      for _, record in ipairs(sim:log()) do
        assert.is_nil(record.raw_query:find(secret, 1, true), "a URL shows a secret")
        assert.is_nil(record.path:find(secret, 1, true), "a URL shows a secret")
      end
    end
  end)
end)

describe("logout at exit", function()
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

  local function assert_logged_out()
    local stats = sim:stats()
    assert.are.equal(1, stats.logins)
    assert.are.equal(1, stats.logouts)
    assert.are.equal(0, stats.sessions)
  end

  it("happens at a normal end", function()
    local result = run { args = { "-e", "require('syno.image').list()" }, env = testenv.sim_env(sim) }
    assert.are.equal(0, result.status, result.stderr)
    assert_logged_out()
  end)

  it("happens after an uncaught error", function()
    local result = run { args = { "-e", "require('syno.image').list() error('boom')" }, env = testenv.sim_env(sim) }
    assert.are.equal(1, result.status)
    assert_logged_out()
  end)

  it("names a failure shared by two sessions once", function()
    -- A NAS of its own, which the script stops before the end.
    local stopped_sim = testenv.start_sim()
    finally(function() stopped_sim:stop() end)
    local script = "local syno = require('syno') local a = syno.connect {} local b = syno.connect {} "
      .. "os.execute('kill " .. stopped_sim.pid .. "; sleep 0.5')"
    local result = run { args = { "-e", script }, env = testenv.sim_env(stopped_sim) }
    local warnings = {}
    for line in result.stderr:gmatch("[^\n]+") do
      if line:find("logout failed", 1, true) then
        warnings[#warnings + 1] = line
      end
    end
    assert.are.equal(1, #warnings, result.stderr)
    local _, count = warnings[1]:gsub("cannot reach", "")
    assert.are.equal(1, count, warnings[1])
  end)

  it("happens after os.exit", function()
    local result = run { args = { "-e", "require('syno.image').list() os.exit(3)" }, env = testenv.sim_env(sim) }
    assert.are.equal(3, result.status)
    assert_logged_out()
  end)

  it("happens when stdout is a closed pipe", function()
    local env = testenv.sim_env(sim)
    local assignments = {}
    for key, value in pairs(env) do
      assignments[#assignments + 1] = key .. "=" .. testenv.quote(value)
    end
    local command = string.format("env %s %s -e %s | head -n 1 >/dev/null", table.concat(assignments, " "),
      testenv.quote_words(testenv.synosh_words()),
      testenv.quote("require('syno.image').list() for i = 1, 200000 do print(i) end"))
    os.execute(command)
    assert_logged_out()
  end)

  it("happens when a pcall loop is interrupted", function()
    sim:faults { { kind = "delay", seconds = 1, api = "SYNO.Docker.Image", count = -1 } }
    local result = run {
      args = { "-e", "local image = require('syno.image') while true do pcall(image.list) end" },
      env = testenv.sim_env(sim), background = "sleep 1.5; kill -INT $pid",
    }
    assert.are.equal(130, result.status)
    assert.are.equal("synosh: error: interrupted by SIGINT\n", result.stderr)
    assert_logged_out()
  end)

  it("happens when a pure Lua loop is interrupted", function()
    local result = run {
      args = { "-e", "require('syno.image').list() while true do pcall(string.rep, 'x', 10) end" },
      env = testenv.sim_env(sim), background = "sleep 1; kill -TERM $pid",
    }
    assert.are.equal(143, result.status)
    assert_logged_out()
  end)

  it("raises an interrupted error object", function()
    sim:faults { { kind = "delay", seconds = 3, api = "SYNO.Docker.Image" } }
    local result = run {
      args = { "-e", "local ok, err = pcall(require('syno.image').list) io.stdout:write(err.kind, '|', tostring(err), '\\n')" },
      env = testenv.sim_env(sim), background = "sleep 1; kill -INT $pid",
    }
    assert.are.equal(130, result.status)
    assert_logged_out()
  end)

  for _, signal in ipairs { { "INT", 130 }, { "TERM", 143 }, { "HUP", 129 } } do
    it("happens on SIG" .. signal[1] .. " during a slow call", function()
      sim:faults { { kind = "delay", seconds = 20, api = "SYNO.Docker.Image" } }
      local result = run {
        args = { "-e", "require('syno.image').list()" }, env = testenv.sim_env(sim),
        background = "sleep 1; kill -" .. signal[1] .. " $pid",
      }
      assert.are.equal(signal[2], result.status)
      assert.matches("interrupted by SIG" .. signal[1], result.stderr, 1, true)
      -- The simulator logs a call only once it responds, after its 20 s delay.
      -- No logged call on this run's connection means synosh stopped without
      -- waiting. Delayed calls of earlier tests may still be logged.
      local connection = sim:calls("SYNO.API.Auth", "login")[1].conn
      for _, record in ipairs(sim:calls("SYNO.Docker.Image", "list")) do
        assert.are_not.equal(connection, record.conn)
      end
      assert_logged_out()
    end)
  end
end)

describe("settings", function()
  local sim

  setup(function()
    sim = testenv.start_sim()
  end)

  teardown(function()
    sim:stop()
  end)

  local show = { "-e", "local s = require('syno').session() print(s.url, s.user, s.dry_run)" }

  local function write_profiles(text)
    local dir = testenv.tmpdir()
    os.execute("mkdir -p " .. dir .. "/synosh")
    testenv.write_file(dir .. "/synosh/config.lua", text)
    return dir
  end

  it("flags beat environment beat profile", function()
    local config = write_profiles([[return {
      home = { url = "http://profile.invalid:5000", user = "from-profile", dry_run = true },
    }]])
    local base_env = { XDG_CONFIG_HOME = config, SYNO_PROFILE = "home" }
    local result = run { args = show, env = base_env }
    assert.are.equal("http://profile.invalid:5000\tfrom-profile\ttrue\n", result.stdout)

    base_env.SYNO_USER = "from-env"
    result = run { args = show, env = base_env }
    assert.are.equal("http://profile.invalid:5000\tfrom-env\ttrue\n", result.stdout)

    result = run { args = { "--user", "from-flag", "--url", "http://flag.invalid", table.unpack(show) }, env = base_env }
    assert.are.equal("http://flag.invalid\tfrom-flag\ttrue\n", result.stdout)
  end)

  it("default profile applies without --profile", function()
    local config = write_profiles([[return { default = { url = "http://default.invalid", user = "d" } }]])
    local result = run { args = show, env = { XDG_CONFIG_HOME = config } }
    assert.are.equal("http://default.invalid\td\tfalse\n", result.stdout)
  end)

  it("profile reads its password file", function()
    local dir = testenv.tmpdir()
    local password_file = testenv.write_file(dir .. "/pass", testenv.password .. "\n", "600")
    local config = write_profiles(string.format(
      [[return { nas = { url = %q, user = "admin", password_file = %q } }]], sim.url, password_file))
    local result = run { args = { "--profile", "nas", "-e", "print(#require('syno.image').list() > 0)" },
                         env = { XDG_CONFIG_HOME = config } }
    assert.are.equal(0, result.status, result.stderr)
    assert.are.equal("true\n", result.stdout)
    assert.are.equal("", result.stderr)
  end)

  it("profile expands ~/ in file paths", function()
    local home = testenv.tmpdir()
    testenv.write_file(home .. "/nas.pass", testenv.password .. "\n", "600")
    local config = write_profiles(string.format(
      [[return { nas = { url = %q, user = "admin", password_file = "~/nas.pass" } }]], sim.url))
    local result = run { args = { "--profile", "nas", "-e", "print(#require('syno.image').list() > 0)" },
                         env = { XDG_CONFIG_HOME = config, HOME = home } }
    assert.are.equal(0, result.status, result.stderr)
    assert.are.equal("true\n", result.stdout)
  end)

  it("unknown profile exits 2", function()
    local config = write_profiles([[return { home = { url = "http://x.invalid" } }]])
    local result = run { args = { "--profile", "work", table.unpack(show) }, env = { XDG_CONFIG_HOME = config } }
    assert.are.equal(2, result.status)
    assert.matches('profile "work" not found in .* %(profiles: home%)', result.stderr)
  end)

  it("profile with a typo exits 2", function()
    local config = write_profiles([[return { home = { ulr = "http://x.invalid" } }]])
    local result = run { args = { "--profile", "home", table.unpack(show) }, env = { XDG_CONFIG_HOME = config } }
    assert.are.equal(2, result.status)
    assert.matches('unknown setting "ulr" in profile "home"', result.stderr, 1, true)
  end)

  it("profile with a password exits 2", function()
    local config = write_profiles([[return { home = { url = "http://x.invalid", password = "hunter2" } }]])
    local result = run { args = { "--profile", "home", table.unpack(show) }, env = { XDG_CONFIG_HOME = config } }
    assert.are.equal(2, result.status)
    assert.matches("password_file", result.stderr, 1, true)
    assert.is_nil(result.stderr:find("hunter2", 1, true))
  end)

  it("broken profile file exits 2", function()
    local config = write_profiles("return {")
    local result = run { args = show, env = { XDG_CONFIG_HOME = config } }
    assert.are.equal(2, result.status)
    assert.matches("invalid profile file", result.stderr, 1, true)
  end)

  it("warns about a profile file others can write", function()
    local config = write_profiles([[return { default = { url = "http://x.invalid", user = "u" } }]])
    os.execute("chmod 666 " .. testenv.quote(config .. "/synosh/config.lua"))
    local result = run { args = show, env = { XDG_CONFIG_HOME = config } }
    assert.are.equal(0, result.status)
    assert.matches("is writable by other users", result.stderr, 1, true)
  end)

  it("SYNO_DRY_RUN=1 turns dry run on", function()
    local result = run { args = show, env = { SYNO_DRY_RUN = "1", SYNO_URL = "http://x.invalid", SYNO_USER = "u" } }
    assert.matches("\ttrue\n$", result.stdout)
  end)

  it("invalid SYNO_TIMEOUT exits 2", function()
    local result = run { args = show, env = { SYNO_TIMEOUT = "abc" } }
    assert.are.equal(2, result.status)
    assert.matches('invalid SYNO_TIMEOUT="abc"', result.stderr, 1, true)
  end)

  local show_dialect = { "-e", "print(require('syno').session().dialect)" }

  it("dialect comes from flag, environment or profile", function()
    local config = write_profiles([[return { default = { url = "http://x.invalid", user = "u",
                                                        dialect = "document" } }]])
    local env = { XDG_CONFIG_HOME = config }
    assert.are.equal("document\n", run({ args = show_dialect, env = env }).stdout)
    env.SYNO_DIALECT = "container-manager"
    assert.are.equal("container-manager\n", run({ args = show_dialect, env = env }).stdout)
    local result = run { args = { "--dialect", "document", table.unpack(show_dialect) }, env = env }
    assert.are.equal("document\n", result.stdout)
  end)

  it("auto dialect is unknown before discovery", function()
    local result = run { args = { "--dialect", "auto", table.unpack(show_dialect) },
                         env = { SYNO_URL = "http://x.invalid", SYNO_USER = "u" } }
    assert.are.equal(0, result.status, result.stderr)
    assert.are.equal("nil\n", result.stdout)
  end)

  it("invalid dialect exits 2", function()
    local result = run { args = { "--dialect", "dsm7", "-e", "" } }
    assert.are.equal(2, result.status)
    assert.matches('invalid --dialect "dsm7": use auto, document or container-manager', result.stderr, 1, true)

    result = run { args = show_dialect, env = { SYNO_DIALECT = "dsm7" } }
    assert.are.equal(2, result.status)
    assert.matches('invalid SYNO_DIALECT "dsm7"', result.stderr, 1, true)

    local config = write_profiles([[return { default = { dialect = "dsm7" } }]])
    result = run { args = show_dialect, env = { XDG_CONFIG_HOME = config } }
    assert.are.equal(2, result.status)
    assert.matches('invalid dialect "dsm7" in profile "default"', result.stderr, 1, true)
  end)

  -- Found by fuzzing: a timeout too large for a C long reached libcurl
  -- through an undefined float-to-integer conversion.
  it("SYNO_TIMEOUT over a day exits 2", function()
    for _, text in ipairs { "1e300", "86401" } do
      local result = run { args = show, env = { SYNO_TIMEOUT = text, SYNO_URL = "http://x.invalid", SYNO_USER = "u" } }
      assert.are.equal(2, result.status, text)
      assert.matches(string.format('invalid SYNO_TIMEOUT="%s": give a number of seconds greater than 0 '
        .. "and at most 86400", text), result.stderr, 1, true)
    end
  end)

  it("profile timeout over a day exits 2", function()
    local config = write_profiles([[return { default = { url = "http://x.invalid", user = "u", timeout = 1e309 } }]])
    local result = run { args = show, env = { XDG_CONFIG_HOME = config } }
    assert.are.equal(2, result.status)
    assert.matches('invalid timeout inf in profile "default"', result.stderr, 1, true)
  end)

  it("warns about a password file others can read", function()
    local env = testenv.sim_env(sim)
    os.execute("chmod 644 " .. testenv.quote(env.SYNO_PASSWORD_FILE))
    local result = run { args = { "-e", "require('syno.image').list()" }, env = env }
    assert.are.equal(0, result.status)
    assert.matches("is readable by other users %(mode 0644%); run: chmod 600", result.stderr)
  end)
end)
