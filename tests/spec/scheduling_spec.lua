-- Scheduled runs: the lock, log lines with times, notifications, signals
-- during a cleanup, snippet search paths, the shipped snippet examples, and
-- the cron and systemd files of docs/scheduling.md run as written.
local testenv = require "testenv"
local cjson = require "cjson"

local cleanup = testenv.root .. "/scripts/cleanup.lua"
local ISO = "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[+-]%d%d:%d%d"

local function lines_of(text)
  local lines = {}
  for line in text:gmatch("[^\n]+") do
    lines[#lines + 1] = line
  end
  return lines
end

-- Copies a file, replacing each installed path with its place in this checkout.
local function localize(text, replacements)
  for _, pair in ipairs(replacements) do
    text = text:gsub(pair[1]:gsub("%p", "%%%0"), (pair[2]:gsub("%%", "%%%%")))
  end
  return text
end

-- Writes a profile "nas" for sim into config_dir/synosh/config.lua.
local function write_profile(config_dir, sim, password_dir)
  os.execute("mkdir -p " .. testenv.quote(config_dir .. "/synosh"))
  local password_file = testenv.write_file(password_dir .. "/nas.pass", testenv.password .. "\n", "600")
  testenv.write_file(config_dir .. "/synosh/config.lua", string.format(
    "return { nas = { url = %q, user = %q, password_file = %q } }\n", sim.url, testenv.user, password_file), "600")
end

describe("scheduled runs", function()
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

  describe("--lock", function()
    it("makes a second run exit 5 while the first holds the lock", function()
      local dir = testenv.tmpdir()
      local lock = dir .. "/cleanup.lock"
      local second = string.format("env -i %s %s --lock %s -e 'print(\"second ran\")' >%s/b.out 2>%s/b.err; "
        .. "echo $? >%s/b.status", testenv.env_words(dir), testenv.quote(testenv.bin), testenv.quote(lock),
        dir, dir, dir)
      -- The first run holds the lock until the second one has finished.
      local result = testenv.run {
        args = { "--lock", lock, "-e", string.format(
          "local core = require 'syno.core'; "
          .. "while not io.open(%q) do core.sleep(0.05) end", dir .. "/b.status") },
        background = string.format("while [ ! -s %s ]; do sleep 0.05; done; %s", testenv.quote(lock), second),
      }
      assert.are.equal(0, result.status, result.stderr)
      assert.are.equal("5", testenv.read_file(dir .. "/b.status"):match("%d+"))
      local message = testenv.strip_timestamps(testenv.read_file(dir .. "/b.err"))
      assert.matches("^synosh: error: another synosh run %(pid %d+, from the lock file%) holds the lock .*cleanup%.lock; "
        .. "this run stops without doing anything\n$", message)
      assert.are.equal("", testenv.read_file(dir .. "/b.out"))
      -- Once the first run is over, the lock is free again.
      local third = testenv.run { args = { "--lock", lock, "-e", "print('third ran')" } }
      assert.are.equal(0, third.status, third.stderr)
      assert.are.equal("third ran\n", third.stdout)
      os.execute("rm -rf " .. testenv.quote(dir))
    end)

    it("is offered to scripts as syno.lock", function()
      local syno = require "syno"
      local dir = testenv.tmpdir()
      local first = syno.lock(dir .. "/job.lock")
      local ok, err = pcall(syno.lock, dir .. "/job.lock")
      assert.is_false(ok)
      assert.are.equal("locked", err.kind)
      assert.matches("pid " .. testenv.read_file(dir .. "/job.lock"):match("%d+"), err.message, 1, true)
      first:release()
      local again = syno.lock(dir .. "/job.lock")
      again:release()
      os.execute("rm -rf " .. testenv.quote(dir))
    end)

    it("says what to do when the lock file cannot be made", function()
      local result = testenv.run { args = { "--lock", "/nonexistent/dir/x.lock", "-e", "print('ran')" } }
      assert.are.equal(2, result.status)
      assert.matches("cannot open lock file /nonexistent/dir/x.lock", result.stderr, 1, true)
      assert.are.equal("", result.stdout)
    end)

    it("asks for a file when --lock names a directory", function()
      local dir = testenv.tmpdir()
      local result = testenv.run { args = { "--lock", dir, "-e", "print('ran')" } }
      assert.are.equal(2, result.status)
      assert.matches("give --lock the path of a file, such as " .. dir .. "/synosh.lock", result.stderr, 1, true)
      assert.are.equal("", result.stdout)
    end)
  end)

  describe("log lines", function()
    it("start with an ISO 8601 time and the level off a terminal", function()
      local result = testenv.run { args = { "-e",
        "local log = require('syno').log; log.info('one'); log.warn('two'); log.error('three')" } }
      assert.are.equal(0, result.status)
      local lines = lines_of(result.log)
      assert.are.equal(3, #lines)
      assert.matches("^" .. ISO .. " synosh: info: one$", lines[1])
      assert.matches("^" .. ISO .. " synosh: warning: two$", lines[2])
      assert.matches("^" .. ISO .. " synosh: error: three$", lines[3])
    end)

    it("are plain on a terminal", function()
      local result = testenv.run_pty { args = { "-e",
        "local log = require('syno').log; log.info('plain info'); log.warn('plain warning')" } }
      assert.are.equal(0, result.status)
      assert.matches("\nplain info\r?\n", "\n" .. result.output)
      assert.matches("\nsynosh: warning: plain warning\r?\n", "\n" .. result.output)
      assert.is_nil(result.output:find("%d%d%d%d%-%d%d%-%d%dT"))
    end)

    it("keep only warnings and errors under --quiet", function()
      local result = testenv.run { args = { "--quiet", "-e",
        "local log = require('syno').log; log.info('hidden'); log.warn('shown'); print(log.enabled('info'))" } }
      assert.are.equal("false\n", result.stdout)
      assert.are.equal("synosh: warning: shown\n", result.stderr)
    end)
  end)

  describe("--notify-command", function()
    it("gets the cleanup report as JSON on standard input", function()
      local dir = testenv.tmpdir()
      local result = testenv.run { args = { "--notify-command", "cat > " .. dir .. "/report.json", cleanup,
        "--keep", "2", "--include", "redis" }, env = testenv.sim_env(sim) }
      assert.are.equal(0, result.status, result.stderr)
      local data = cjson.decode(testenv.read_file(dir .. "/report.json"))
      assert.are.equal("cleanup", data.kind)
      assert.are.equal(0, data.exit_status)
      assert.are.equal("ok", data.status)
      assert.are.equal(sim.url, data.nas)
      assert.are.equal(#sim:calls("SYNO.Docker.Image", "delete"), data.summary.deleted)
      assert.is_true(data.summary.deleted > 0)
      os.execute("rm -rf " .. testenv.quote(dir))
    end)

    it("gets the error when the run fails before any report", function()
      local dir = testenv.tmpdir()
      local env = testenv.sim_env(sim)
      env.SYNO_PASSWORD_FILE = testenv.write_file(dir .. "/wrong", "not the password\n", "600")
      local result = testenv.run { args = { "--notify-command", "cat > " .. dir .. "/report.json", cleanup },
        env = env }
      assert.are.equal(3, result.status)
      local text = testenv.read_file(dir .. "/report.json")
      local data = cjson.decode(text)
      assert.are.equal("run", data.kind)
      assert.are.equal("failed", data.status)
      assert.are.equal(3, data.exit_status)
      assert.matches("login to .* failed", data.error)
      assert.is_nil(text:find("not the password", 1, true))
      assert.is_nil(text:find(testenv.password, 1, true))
      os.execute("rm -rf " .. testenv.quote(dir))
    end)

    it("runs even when the profile is missing or the script's options are bad", function()
      local dir = testenv.tmpdir()
      local result = testenv.run { args = { "--profile", "missing", "--notify-command", "cat > " .. dir .. "/a.json",
        "-e", "require('syno')" } }
      assert.are.equal(2, result.status)
      local data = cjson.decode(testenv.read_file(dir .. "/a.json"))
      assert.are.equal(2, data.exit_status)
      assert.matches('profile "missing" not found', data.error, 1, true)
      result = testenv.run { args = { "--notify-command", "cat > " .. dir .. "/b.json", cleanup, "--kep", "3" },
        env = testenv.sim_env(sim) }
      assert.are.equal(2, result.status)
      data = cjson.decode(testenv.read_file(dir .. "/b.json"))
      assert.matches("cleanup.lua: unknown option --kep", data.error, 1, true)
      os.execute("rm -rf " .. testenv.quote(dir))
    end)

    it("warns when the command fails and keeps the run's exit status", function()
      local result = testenv.run { args = { "--notify-command", "cat >/dev/null; exit 3", "-e", "print('done')" } }
      assert.are.equal(0, result.status)
      assert.matches("the notify command exited with status 3", result.stderr, 1, true)
    end)

    it("runs at once with syno.notify and a command", function()
      local dir = testenv.tmpdir()
      local result = testenv.run { args = { "-e", string.format([[
        local syno = require "syno"
        local policy = require "syno.policy"
        local plan = policy.plan({ { id = "sha256:1", repository = "a", tag = "1", created = 1, size = 5 } }, { keep = 0 })
        syno.notify(plan, { command = "cat > %s/plan.json" })
      ]], dir) } }
      assert.are.equal(0, result.status, result.stderr)
      local data = cjson.decode(testenv.read_file(dir .. "/plan.json"))
      assert.are.equal("plan", data.kind)
      assert.are.equal("delete", data.images[1].action)
      os.execute("rm -rf " .. testenv.quote(dir))
    end)
  end)

  describe("signals during a cleanup", function()
    for _, signal in ipairs { { "TERM", 143 }, { "INT", 130 } } do
      it("SIG" .. signal[1] .. " stops after the current delete, reports it and logs out", function()
        sim:faults { { kind = "delay", seconds = 0.3, api = "SYNO.Docker.Image", method = "delete", count = -1 } }
        local result = testenv.run {
          args = { cleanup, "--keep", "0", "--unknown-age", "delete" }, env = testenv.sim_env(sim),
          background = "while ! grep -q 'synosh: info: deleted' \"$dir/stderr\" 2>/dev/null; do sleep 0.05; done; kill -"
            .. signal[1] .. " $pid",
        }
        assert.are.equal(signal[2], result.status, result.stderr)
        assert.matches("synosh: error: interrupted by SIG" .. signal[1], result.stderr, 1, true)
        local deleted, planned, not_attempted = result.stdout:match(
          "deleted (%d+) of (%d+) planned images, .*not attempted (%d+) %(interrupted%)")
        assert.is_not_nil(deleted, result.stdout)
        -- Exactly what the NAS saw deleted, and the rest untouched.
        assert.are.equal(#sim:calls("SYNO.Docker.Image", "delete"), tonumber(deleted))
        assert.are.equal(tonumber(planned), tonumber(deleted) + tonumber(not_attempted))
        assert.is_true(tonumber(not_attempted) > 0)
        local stats = sim:stats()
        assert.are.equal(1, stats.logouts)
        assert.are.equal(0, stats.sessions)
      end)
    end
  end)

  describe("snippets", function()
    it("are found in SYNOSH_PATH, then in $XDG_CONFIG_HOME/synosh/lua", function()
      local dir = testenv.tmpdir()
      os.execute(string.format("mkdir -p %s/config/synosh/lua/team %s/a %s/b", dir, dir, dir))
      testenv.write_file(dir .. "/config/synosh/lua/snip.lua", "return 'from config'\n")
      testenv.write_file(dir .. "/config/synosh/lua/team/init.lua", "return 'team package'\n")
      testenv.write_file(dir .. "/config/synosh/lua/only.lua", "return 'only in config'\n")
      testenv.write_file(dir .. "/b/snip.lua", "return 'from SYNOSH_PATH'\n")
      local code = "print((require 'snip'), (require 'team'), (require 'only'))"
      local result = testenv.run { args = { "-e", code },
        env = { XDG_CONFIG_HOME = dir .. "/config", SYNOSH_PATH = dir .. "/a:" .. dir .. "/b" } }
      assert.are.equal(0, result.status, result.stderr)
      assert.are.equal("from SYNOSH_PATH\tteam package\tonly in config\n", result.stdout)
      result = testenv.run { args = { "-e", code }, env = { XDG_CONFIG_HOME = dir .. "/config" } }
      assert.are.equal("from config\tteam package\tonly in config\n", result.stdout)
      -- Without XDG_CONFIG_HOME, ~/.config/synosh/lua.
      os.execute(string.format("mkdir -p %s/home/.config/synosh/lua", dir))
      testenv.write_file(dir .. "/home/.config/synosh/lua/snip.lua", "return 'from home'\n")
      result = testenv.run { args = { "-e", "print((require 'snip'))" },
        env = { XDG_CONFIG_HOME = false, HOME = dir .. "/home" } }
      assert.are.equal("from home\n", result.stdout, result.stderr)
      os.execute("rm -rf " .. testenv.quote(dir))
    end)

    it("size_report ranks repositories by size", function()
      local env = testenv.sim_env(sim, { SYNOSH_PATH = testenv.root .. "/scripts/examples" })
      local result = testenv.run { args = { "-e", [[
        local rows = require("size_report").by_repository(require("syno.image").list())
        print(rows[1].repository, rows[1].bytes >= rows[2].bytes, #rows)
        require("size_report").print(require("syno.image").list(), { top = 3 })
        require("size_report").print(require("syno.image").list())
      ]] }, env = env }
      assert.are.equal(0, result.status, result.stderr)
      local lines = lines_of(result.stdout)
      assert.are.equal(14, #lines)
      assert.matches("^%S+\ttrue\t%d+$", lines[1])
      assert.matches("^%s*[%d.]+ [kMG]?B%s+%d+ tags?%s+%S+$", lines[2])
    end)

    it("disk_budget deletes the oldest images only until they fit", function()
      local env = testenv.sim_env(sim, { SYNOSH_PATH = testenv.root .. "/scripts/examples" })
      local result = testenv.run { args = { "--dry-run", "-e", [[
        local policy = require "syno.policy"
        local all = policy.cleanup { keep = 1, dry_run = true }
        local budget = require("disk_budget").cleanup { keep = 1, max_bytes = 15e9 }
        local total, counted = 0, {}
        for _, entry in ipairs(budget.plan) do
          local id = policy.normal_id(entry.image.id)
          if not counted[id] then counted[id] = true; total = total + entry.image.size end
        end
        print(#all.deleted, #budget.deleted, total - budget.bytes_freed <= 15e9, budget.dry_run)
      ]] }, env = env }
      assert.are.equal(0, result.status, result.stderr)
      local all, some, fits, dry = result.stdout:match("^(%d+)\t(%d+)\t(%a+)\t(%a+)")
      assert.is_true(tonumber(some) > 0 and tonumber(some) < tonumber(all), result.stdout)
      assert.are.equal("true", fits)
      assert.are.equal("true", dry)
      assert.are.equal(0, #sim:calls("SYNO.Docker.Image", "delete"))
    end)

    it("cannot make a cleanup delete what a rule keeps", function()
      local result = testenv.run { args = { "-e", [[
        require("syno.policy").cleanup { keep = 1, on_plan = function(plan)
          for _, entry in ipairs(plan) do entry.action = "delete" end
        end }
      ]] }, env = testenv.sim_env(sim) }
      assert.are.equal(2, result.status)
      assert.matches("on_plan may only keep more images", result.stderr, 1, true)
      assert.are.equal(0, #sim:calls("SYNO.Docker.Image", "delete"))
    end)
  end)

  describe("the shipped schedules", function()
    local function replacements(dir)
      return {
        { "/usr/local/bin/synosh", testenv.bin },
        { "/usr/local/share/synosh/scripts", testenv.root .. "/scripts" },
        { "/run/lock/", dir .. "/lock/" },
        { "/var/lib/synosh", dir .. "/state" },
        { "=/etc", "=" .. dir .. "/etc" },
      }
    end

    it("the cron line runs as written, silent on success", function()
      local dir = testenv.tmpdir()
      os.execute(string.format("mkdir -p %s/home %s/lock", dir, dir))
      write_profile(dir .. "/home/.config", sim, dir .. "/home")
      local crontab = testenv.read_file(testenv.root .. "/scripts/cron/synosh-cleanup")
      local line = crontab:match("\n(%d+ %d+ %* %* %* [^\n]+)")
      assert.is_not_nil(line)
      -- Five time fields, the user, then the command that cron gives to sh.
      local user, command = line:match("^%S+ %S+ %S+ %S+ %S+ (%S+) (.+)$")
      assert.are.equal("synosh", user)
      command = localize(command, replacements(dir))
      -- cron's environment: HOME, LOGNAME, SHELL and a short PATH.
      local runner = testenv.write_file(dir .. "/cron.sh", string.format(
        "env -i HOME=%s LOGNAME=synosh SHELL=/bin/sh PATH=/usr/bin:/bin /bin/sh -c %s >%s/out 2>&1; echo $? >%s/status\n",
        testenv.quote(dir .. "/home"), testenv.quote(command), dir, dir))
      os.execute("sh " .. testenv.quote(runner))
      assert.are.equal("0", testenv.read_file(dir .. "/status"):match("%d+"), testenv.read_file(dir .. "/out"))
      assert.are.equal("", testenv.read_file(dir .. "/out"))
      assert.is_true(#sim:calls("SYNO.Docker.Image", "delete") > 0)
      -- docs/scheduling.md shows the same line.
      assert.is_not_nil(testenv.read_file(testenv.root .. "/docs/scheduling.md"):find(line, 1, true))
      os.execute("rm -rf " .. testenv.quote(dir))
    end)

    it("the systemd units pass systemd-analyze verify and the service runs as written", function()
      local dir = testenv.tmpdir()
      os.execute(string.format("mkdir -p %s/units %s/state %s/etc", dir, dir, dir))
      write_profile(dir .. "/etc", sim, dir .. "/etc/synosh")
      local service = localize(testenv.read_file(testenv.root .. "/scripts/systemd/synosh-cleanup.service"),
        replacements(dir))
      testenv.write_file(dir .. "/units/synosh-cleanup.service", service)
      testenv.write_file(dir .. "/units/synosh-cleanup.timer",
        testenv.read_file(testenv.root .. "/scripts/systemd/synosh-cleanup.timer"))
      if os.execute("command -v systemd-analyze >/dev/null 2>&1") then
        local ok = os.execute(string.format("systemd-analyze verify --man=no %s/units/synosh-cleanup.service "
          .. "%s/units/synosh-cleanup.timer >%s/verify 2>&1", dir, dir, dir))
        assert.is_true(ok, testenv.read_file(dir .. "/verify"))
      else
        print("systemd-analyze is not installed: the units were not verified")
      end
      -- Run ExecStart with the unit's Environment= lines, as systemd would.
      local env = {}
      for assignment in service:gmatch("\nEnvironment=([^\n]+)") do
        env[#env + 1] = testenv.quote(assignment)
      end
      local exec = service:match("\nExecStart=([^\n]+)")
      local runner = testenv.write_file(dir .. "/service.sh", string.format(
        "env -i PATH=/usr/bin:/bin %s %s >%s/out 2>%s/err; echo $? >%s/status\n",
        table.concat(env, " "), exec, dir, dir, dir))
      os.execute("sh " .. testenv.quote(runner))
      assert.are.equal("0", testenv.read_file(dir .. "/status"):match("%d+"), testenv.read_file(dir .. "/err"))
      assert.matches("deleted %d+ of %d+ planned images", testenv.read_file(dir .. "/out"))
      for _, line in ipairs(lines_of(testenv.read_file(dir .. "/err"))) do
        assert.matches("^" .. ISO .. " synosh: ", line)
      end
      assert.is_true(#sim:calls("SYNO.Docker.Image", "delete") > 0)
      os.execute("rm -rf " .. testenv.quote(dir))
    end)
  end)
end)
