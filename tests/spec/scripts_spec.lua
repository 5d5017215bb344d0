-- The ready-to-run scripts against the home-lab fixture: cleanup, pull and
-- inventory, their flags, reports and exit statuses.
local testenv = require "testenv"
local cjson = require "cjson"

local cleanup = testenv.root .. "/scripts/cleanup.lua"
local inventory = testenv.root .. "/scripts/inventory.lua"
local pull = testenv.root .. "/scripts/pull.lua"

-- The plan lines of a cleanup's table output: {action, name, line}.
local function plan_lines(stdout)
  local lines = {}
  for line in stdout:gmatch("[^\n]+") do
    local action, name = line:match("^(%a+)%s+(%S+)")
    if action == "delete" or action == "keep" then
      lines[#lines + 1] = { action = action, name = name, line = line }
    end
  end
  return lines
end

local function planned(stdout, action)
  local names = {}
  for _, entry in ipairs(plan_lines(stdout)) do
    if entry.action == action then
      names[#names + 1] = entry.name
    end
  end
  return names
end

local function set_of(list)
  local set = {}
  for _, item in ipairs(list) do
    set[item] = true
  end
  return set
end

-- The names the simulator saw deleted: repository:tag, or the short id of a dangling image.
local function deleted_names(sim)
  local names = {}
  for _, record in ipairs(sim:calls("SYNO.Docker.Image", "delete")) do
    local params = record.body
    if params.tag == "<none>" then
      names[#names + 1] = string.format("<none>(%s)", params.repository:gsub("^sha256:", ""):sub(1, 12))
    else
      names[#names + 1] = params.repository .. ":" .. params.tag
    end
  end
  return names
end

local function no_write_calls(sim)
  for _, record in ipairs(sim:log()) do
    assert.is_true(record.http_method == "GET" or record.api == "SYNO.API.Auth",
      "write call: " .. tostring(record.api) .. " " .. tostring(record.method))
  end
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

  local function run(args, extra)
    return testenv.run { args = args, env = testenv.sim_env(sim, extra) }
  end

  describe("cleanup", function()
    local rules = { "--keep", "2", "--older-than", "30d", "--exclude", "lscr.io/*" }

    it("dry run gives reasons and sends no write", function()
      local args = { cleanup }
      for _, word in ipairs(rules) do
        args[#args + 1] = word
      end
      args[#args + 1] = "--dry-run"
      local result = run(args)
      assert.are.equal(0, result.status, result.stderr)
      assert.matches("(dry run: nothing is deleted)", result.stdout, 1, true)
      local lines = plan_lines(result.stdout)
      assert.is_true(#lines >= 40)
      local reasons = { "newest images of", "newest image of", "older than", "newer than", "exclude pattern", "unknown age",
        "dangling", "DSM", "used by container", "include pattern", "listed twice", "same image as" }
      for _, entry in ipairs(lines) do
        local found = false
        for _, reason in ipairs(reasons) do
          found = found or entry.line:find(reason, 1, true) ~= nil
        end
        assert.is_true(found, "no reason on: " .. entry.line)
      end
      local kept = set_of(planned(result.stdout, "keep"))
      assert.is_true(kept["lscr.io/linuxserver/radarr:5.8.3"])
      assert.matches('matches exclude pattern "lscr.io/*"', result.stdout, 1, true)
      assert.matches("dry run: would delete %d+ of %d+ images", result.stdout)
      no_write_calls(sim)
    end)

    it("without dry run deletes exactly the planned images", function()
      local dry = run { cleanup, "--keep", "2", "--older-than", "30d", "--exclude", "lscr.io/*", "--dry-run", "--json" }
      assert.are.equal(0, dry.status, dry.stderr)
      local plan = cjson.decode(dry.stdout)
      local expected = {}
      for _, item in ipairs(plan.images) do
        if item.action == "delete" then
          expected[#expected + 1] = item.tag == "<none>"
            and string.format("<none>(%s)", item.id:gsub("^sha256:", ""):sub(1, 12)) or item.name
        end
      end
      assert.is_true(#expected >= 5)
      sim:reset()
      local result = run { cleanup, "--keep", "2", "--older-than", "30d", "--exclude", "lscr.io/*" }
      local sent = deleted_names(sim)
      table.sort(sent)
      table.sort(expected)
      assert.are.same(expected, sent)
      -- postgres:15 is used by a container, so the NAS refuses it: the run goes
      -- on and counts it as kept.
      assert.are.equal(0, result.status, result.stderr)
      assert.matches("kept postgres:15: used by a container", result.stderr, 1, true)
      assert.matches("deleted %d+ of %d+ planned images, freeing .*failed 0", result.stdout)
      -- The summary counts the refused delete among the planned ones, so it
      -- matches the dry run, and gives the reason it was not deleted.
      assert.matches(string.format("deleted %d of %d planned images, freeing [^;]+; 1 in use %%(the NAS "
        .. "refused to delete it%%), kept", #expected - 1, #expected), result.stdout)
      assert.matches("this NAS does not list its containers, so this plan cannot tell which images a "
        .. "container uses", dry.stderr .. dry.stdout, 1, true)
      assert.are.equal(#expected, plan.summary.would_delete)
      local left = {}
      for _, item in ipairs(sim:state().images) do
        left[item.repository .. ":" .. item.tag] = true
      end
      assert.is_true(left["postgres:15"])
      assert.is_nil(left["nginx:1.25.3"])
    end)

    it("keeps the two newest images of each repository", function()
      local result = run { cleanup, "--dry-run", "--keep", "2", "--unknown-age", "delete" }
      assert.are.equal(0, result.status, result.stderr)
      local json = run { cleanup, "--plan", "--json", "--keep", "2", "--unknown-age", "delete" }
      local kept_per_repository = {}
      for _, item in ipairs(cjson.decode(json.stdout).images) do
        if item.rule == "keep" and item.action == "keep" then
          local ids = kept_per_repository[item.repository] or {}
          kept_per_repository[item.repository] = ids
          ids[item.id] = true
        end
      end
      for repository, ids in pairs(kept_per_repository) do
        local count = 0
        for _ in pairs(ids) do
          count = count + 1
        end
        assert.is_true(count <= 2, repository)
      end
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

    it("--plan prints the plan only and sends no write", function()
      local result = run { cleanup, "--plan", "--keep", "1" }
      assert.are.equal(0, result.status, result.stderr)
      assert.is_nil(result.stderr:find("deleted", 1, true))
      assert.matches("^ACTION", result.stdout)
      assert.matches("\nplan: delete %d+ of %d+ images, freeing ", result.stdout)
      assert.is_nil(result.stdout:find("dry run", 1, true))
      no_write_calls(sim)
    end)

    it("--plan --json prints the plan as JSON", function()
      local result = run { cleanup, "--plan", "--json", "--keep", "1", "--include", "nginx" }
      assert.are.equal(0, result.status, result.stderr)
      local data = cjson.decode(result.stdout)
      assert.are.equal("plan", data.kind)
      assert.are.equal(1, data.rules.keep)
      assert.are.same({ "nginx" }, data.rules.include)
      for _, item in ipairs(data.images) do
        assert.is_string(item.reason)
        if not item.name:match("^nginx:") then
          assert.are.equal("keep", item.action)
        end
      end
      no_write_calls(sim)
    end)

    it("--json prints the report with what happened to each image", function()
      local result = run { cleanup, "--json", "--keep", "1", "--include", "redis" }
      assert.are.equal(0, result.status, result.stderr)
      local data = cjson.decode(result.stdout)
      assert.are.equal("cleanup", data.kind)
      assert.is_false(data.dry_run)
      assert.are.equal(data.summary.planned, data.summary.deleted)
      local results = {}
      for _, item in ipairs(data.images) do
        results[item.name] = item.result
      end
      assert.are.equal("deleted", results["redis:7.2"])
      assert.are.equal("kept", results["nginx:latest"])
      assert.is_true(data.summary.bytes_freed > 0)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", data.started)
    end)

    it("rejects an invalid pattern before logging in", function()
      local result = run { cleanup, "--exclude", "redis:.*" }
      assert.are.equal(2, result.status)
      assert.matches('invalid pattern "redis:.*"', result.stderr, 1, true)
      assert.matches('write "redis:*"', result.stderr, 1, true)
      assert.are.equal(0, #sim:log())
    end)

    it("rejects a bad --older-than and --keep", function()
      local result = run { cleanup, "--older-than", "30 days" }
      assert.are.equal(2, result.status)
      assert.matches('invalid duration "30 days"', result.stderr, 1, true)
      result = run { cleanup, "--keep", "two" }
      assert.are.equal(2, result.status)
      assert.matches('invalid --keep "two"', result.stderr, 1, true)
      result = run { cleanup, "--bogus" }
      assert.are.equal(2, result.status)
      assert.matches("unknown option --bogus", result.stderr, 1, true)
      assert.are.equal(0, #sim:log())
    end)

    it("stops with status 4 when the NAS stops answering", function()
      sim:faults { { kind = "drop", api = "SYNO.Docker.Image", method = "delete", count = -1 } }
      local result = run { cleanup, "--keep", "0", "--unknown-age", "delete", "--json" }
      assert.are.equal(4, result.status, result.stderr)
      local data = cjson.decode(result.stdout)
      assert.are.equal(2, data.summary.failed)
      assert.is_true(data.summary.not_attempted > 10)
      assert.are.equal("network", data.unreachable.kind)
      assert.are.equal(2, #sim:calls("SYNO.Docker.Image", "delete"))
      assert.matches("synosh: error: stopped: ", result.stderr, 1, true)
    end)

    it("rejects an option given twice with different values", function()
      local result = run { cleanup, "--keep", "3", "--older-than", "30d", "--keep=1" }
      assert.are.equal(2, result.status)
      assert.matches("cleanup.lua: --keep is given twice, as 3 and 1: give it once", result.stderr, 1, true)
      assert.are.equal(0, #sim:log())
      result = run { cleanup, "--keep", "3", "--keep", "3", "--dry-run", "--dry-run" }
      assert.are.equal(0, result.status, result.stderr)
    end)

    it("says where synosh's own options belong", function()
      for _, option in ipairs { "--quiet", "-q" } do
        local result = run { cleanup, option }
        assert.are.equal(2, result.status)
        assert.matches("it is an option of synosh itself, so give it before the script", result.stderr, 1, true)
      end
    end)

    it("says an option needs a value when the next word is an option", function()
      local result = run { cleanup, "--keep", "--plan" }
      assert.are.equal(2, result.status)
      assert.matches("cleanup.lua: --keep needs a value (N)", result.stderr, 1, true)
      result = run { cleanup, "--exclude", "--dry-run" }
      assert.matches("cleanup.lua: --exclude needs a value (PATTERN)", result.stderr, 1, true)
    end)

    it("names --exclude-file when it cannot be read", function()
      local result = run { cleanup, "--exclude-file", "/" }
      assert.are.equal(2, result.status)
      assert.matches("cannot read --exclude-file /", result.stderr, 1, true)
    end)

    it("reads exclude patterns from a file", function()
      local dir = testenv.tmpdir()
      local file = testenv.write_file(dir .. "/exclude", "# keep these\nredis\n\n  nginx:1.25.*  # old pins\n")
      local result = run { cleanup, "--plan", "--json", "--keep", "0", "--exclude-file", file }
      os.execute("rm -rf " .. testenv.quote(dir))
      assert.are.equal(0, result.status, result.stderr)
      local data = cjson.decode(result.stdout)
      assert.are.same({ "redis", "nginx:1.25.*" }, data.rules.exclude)
      for _, item in ipairs(data.images) do
        if item.name:match("^redis:") or item.name:match("^nginx:1%.25%.") then
          assert.are.equal("keep", item.action, item.name)
        end
      end
    end)

    it("deletes dangling images and keeps them with --no-dangling", function()
      local result = run { cleanup, "--keep", "5", "--no-dangling" }
      assert.are.equal(0, result.status, result.stderr)
      assert.are.equal(0, #sim:calls("SYNO.Docker.Image", "delete"))
      result = run { cleanup, "--keep", "5" }
      assert.are.equal(0, result.status, result.stderr)
      for _, item in ipairs(sim:state().images) do
        assert.are_not.equal("<none>", item.repository)
      end
    end)

    it("never deletes DSM images, even with --keep 0", function()
      run { cleanup, "--keep", "0", "--unknown-age", "delete" }
      local ddsm_left = 0
      for _, item in ipairs(sim:state().images) do
        if item.is_ddsm then
          ddsm_left = ddsm_left + 1
        end
      end
      assert.is_true(ddsm_left >= 1)
    end)

    it("prints nothing under --quiet when all goes well", function()
      local result = run { "--quiet", cleanup, "--keep", "2", "--include", "redis" }
      assert.are.equal(0, result.status, result.stderr)
      assert.are.equal("", result.stdout)
      assert.are.equal("", result.stderr)
      assert.is_true(#sim:calls("SYNO.Docker.Image", "delete") > 0)
    end)

    it("says which images a failure left, in the log and the exit status", function()
      sim:faults { { kind = "dsm_error", code = 117, api = "SYNO.Docker.Image", method = "delete" } }
      local result = run { cleanup, "--keep", "1", "--include", "redis" }
      assert.are.equal(1, result.status)
      assert.matches("cannot delete redis:", result.stderr)
      assert.matches("failed 1", result.stdout, 1, true)
    end)

    it("documents every flag in --help", function()
      local result = run { cleanup, "--help" }
      assert.are.equal(0, result.status)
      for _, flag in ipairs { "--keep", "--older-than", "--unknown-age", "--include", "--exclude",
        "--exclude-file", "--no-dangling", "--show-dsm", "--force", "--dry-run", "--plan", "--json" } do
        assert.matches(flag, result.stdout, 1, true)
      end
    end)
  end)

  describe("pull", function()
    it("pulls and waits for new images", function()
      local result = run { pull, "--wait", "busybox:1.36", "nginx:1.27.3" }
      assert.are.equal(0, result.status, result.stderr)
      assert.matches("pulled 2, up to date 0, started 0, failed 0", result.stdout, 1, true)
      assert.are.equal(2, #sim:calls("SYNO.Docker.Image", "pull"))
      local names = {}
      for _, item in ipairs(sim:state().images) do
        names[item.repository .. ":" .. item.tag] = true
      end
      assert.is_true(names["busybox:1.36"])
    end)

    it("reports an unchanged image as up to date", function()
      sim:config { pull_delay = 60 }
      local result = run { pull, "--wait", "--settle", "0.5", "--json", "nginx:1.27.3" }
      assert.are.equal(0, result.status, result.stderr)
      local data = cjson.decode(result.stdout)
      assert.are.equal("up to date", data.images[1].result)
      assert.are.equal(data.images[1].previous_id, data.images[1].id)
      assert.are.equal(1, data.summary.up_to_date)
    end)

    it("fails an image that never appears, and exits 1", function()
      sim:config { pull_delay = 60 }
      local result = run { pull, "--wait", "--timeout", "0.5", "busybox:9.9", "alpine:3.20" }
      assert.are.equal(1, result.status)
      assert.matches("cannot pull busybox:9.9: busybox:9.9 did not appear on the NAS within", result.stderr, 1, true)
      assert.matches("failed 1", result.stdout, 1, true)
    end)

    it("starts pulls without --wait", function()
      local result = run { pull, "--json", "redis:7.4" }
      assert.are.equal(0, result.status, result.stderr)
      local data = cjson.decode(result.stdout)
      assert.are.equal("started", data.images[1].result)
      assert.is_string(data.images[1].task_id)
    end)

    it("reads references from a file", function()
      local dir = testenv.tmpdir()
      local file = testenv.write_file(dir .. "/images", "# base images\nalpine:3.20\n\nbusybox:1.36 # tools\n")
      local result = run { pull, "--file", file, "--json" }
      os.execute("rm -rf " .. testenv.quote(dir))
      assert.are.equal(0, result.status, result.stderr)
      local data = cjson.decode(result.stdout)
      assert.are.equal("alpine:3.20", data.images[1].reference)
      assert.are.equal("busybox:1.36", data.images[2].reference)
    end)

    it("checks every reference before the first pull", function()
      local result = run { pull, "alpine:3.20", "Nginx:1" }
      assert.are.equal(2, result.status)
      assert.matches('invalid reference "Nginx:1"', result.stderr, 1, true)
      assert.are.equal(0, #sim:calls("SYNO.Docker.Image", "pull"))
    end)

    it("sends no pull under --dry-run", function()
      local result = run { pull, "--dry-run", "--json", "alpine:3.20" }
      assert.are.equal(0, result.status, result.stderr)
      assert.are.equal("would pull", cjson.decode(result.stdout).images[1].result)
      no_write_calls(sim)
    end)

    it("shows progress on a terminal as one rewritten line", function()
      sim:config { pull_delay = 1 }
      local result = testenv.run_pty { args = { pull, "--wait", "busybox:1.36" }, env = testenv.sim_env(sim) }
      assert.are.equal(0, result.status, result.output)
      assert.matches("\r\27[K", result.output, 1, true)
      assert.matches("\r\27%[Kpulling busybox:1%.36: waiting for the image, %d+ s", result.output)
      assert.matches("pulled 1, up to date 0", result.output, 1, true)
    end)

    it("rejects --timeout without --wait and a URL as a reference", function()
      local result = run { pull, "--timeout", "3", "alpine:3.20" }
      assert.are.equal(2, result.status)
      assert.matches("--timeout and --settle apply only with --wait", result.stderr, 1, true)
      result = run { pull, "https://ghcr.io/owner/app:v2" }
      assert.are.equal(2, result.status)
      assert.matches("a reference has no scheme; write ghcr.io/owner/app:v2", result.stderr, 1, true)
      assert.are.equal(0, #sim:calls("SYNO.Docker.Image", "pull"))
    end)

    it("needs at least one reference", function()
      local result = run { pull }
      assert.are.equal(2, result.status)
      assert.matches("no image to pull", result.stderr, 1, true)
    end)
  end)

  describe("inventory", function()
    it("lists every repository", function()
      local result = run { inventory }
      assert.are.equal(0, result.status, result.stderr)
      for _, item in ipairs(sim:state().images) do
        if item.repository ~= "<none>" and not item.is_ddsm then
          assert.matches("\n" .. item.repository:gsub("%p", "%%%0") .. "  %(", "\n" .. result.stdout)
        end
      end
      assert.matches("dangling images", result.stdout, 1, true)
      assert.matches("total: %d+ images in %d+ repositories, %d+ dangling", result.stdout)
    end)

    it("prints JSON with --json", function()
      local result = run { inventory, "--json", "--all" }
      assert.are.equal(0, result.status, result.stderr)
      local data = cjson.decode(result.stdout)
      local state = sim:state().images
      assert.are.equal(#state, #data.images)
      assert.are.equal(#state, data.summary.images)
      -- An image that several tags name counts once.
      local bytes, seen = 0, {}
      for _, item in ipairs(state) do
        if not seen[item.id] then
          seen[item.id] = true
          bytes = bytes + item.size
        end
      end
      assert.are.equal(bytes, data.summary.bytes)
      local ddsm = 0
      for _, item in ipairs(data.images) do
        assert.is_string(item.id)
        if item.is_ddsm then
          ddsm = ddsm + 1
        end
      end
      assert.is_true(ddsm >= 1)
    end)

    it("rejects unknown options", function()
      local result = run { inventory, "--bogus" }
      assert.are.equal(2, result.status)
      assert.matches("unknown option --bogus", result.stderr, 1, true)
    end)
  end)
end)
