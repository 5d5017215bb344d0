-- Test environment for the specs: paths, the DSM simulator as a real process on
-- 127.0.0.1, and running the synosh binary as a subprocess.
--
-- tests/run sets SYNOSH_ROOT (the repository), SYNOSH_BIN (the binary) and
-- SYNOSH_CERTS (the folder made by tests/helpers/make-certs.sh). When
-- SYNOSH_WRAPPER is set (such as "valgrind --leak-check=full"), its words come
-- before the binary on every command line that runs synosh.

local core = require "syno.core"
local cjson = require "cjson"

local M = {}

M.root = os.getenv("SYNOSH_ROOT") or "."
M.bin = os.getenv("SYNOSH_BIN") or (M.root .. "/build/synosh")
M.certs = os.getenv("SYNOSH_CERTS") or (M.root .. "/build/tests/certs")
M.fixture = M.root .. "/tests/fixtures/homelab.json"
-- tests/run collects the output of every synosh run and every simulator
-- request here, so the last spec can check that no secret leaked.
M.capture_dir = os.getenv("SYNOSH_CAPTURE_DIR")

-- Appends text to the suite's captured output.
local function capture(text)
  if M.capture_dir and text and text ~= "" then
    local file = io.open(M.capture_dir .. "/output.txt", "ab")
    if file then
      file:write(text, "\n")
      file:close()
    end
  end
end

-- The wrapper's words, split at spaces.
M.wrapper = {}
for word in (os.getenv("SYNOSH_WRAPPER") or ""):gmatch("%S+") do
  M.wrapper[#M.wrapper + 1] = word
end

--- Returns the words that run synosh: the wrapper's, then the binary.
function M.synosh_words()
  local words = { table.unpack(M.wrapper) }
  words[#words + 1] = M.bin
  return words
end

-- Variables that reach synosh although the rest of the environment is
-- replaced: the sanitizer settings, so a sanitizer build reports as
-- configured, and SYNOSH_MALLOC, which tests/valgrind sets.
local passed_through = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "SYNOSH_MALLOC" }

--- Copies the sanitizer settings of this process into env and returns env.
function M.pass_through(env)
  for _, name in ipairs(passed_through) do
    env[name] = os.getenv(name)
  end
  return env
end

-- The accounts of tests/fixtures/homelab.json, by account name.
M.users = {}
do
  local file = assert(io.open(M.fixture, "rb"))
  for _, user in ipairs(cjson.decode(file:read("a")).users) do
    M.users[user.account] = user
  end
  file:close()
end
M.user = "admin"
M.password = M.users.admin.password

--- Quotes text for /bin/sh.
function M.quote(text)
  return "'" .. tostring(text):gsub("'", "'\\''") .. "'"
end

--- Quotes each word of a list and joins them with spaces.
function M.quote_words(words)
  local quoted = {}
  for index, word in ipairs(words) do
    quoted[index] = M.quote(word)
  end
  return table.concat(quoted, " ")
end

-- Returns "NAME='value' ..." for env -i: PATH, HOME and XDG folders under dir,
-- then extra (where false removes a variable).
local function environment(dir, extra, defaults)
  local env = {
    PATH = os.getenv("PATH"), HOME = dir, XDG_CONFIG_HOME = dir .. "/config",
    XDG_STATE_HOME = dir .. "/state", LANG = "C.UTF-8",
  }
  M.pass_through(env)
  for key, value in pairs(defaults or {}) do
    env[key] = value
  end
  for key, value in pairs(extra or {}) do
    env[key] = value or nil
  end
  local assignments = {}
  for key, value in pairs(env) do
    assignments[#assignments + 1] = key .. "=" .. M.quote(value)
  end
  return table.concat(assignments, " ")
end

--- Returns the "NAME='value' ..." words env -i needs to run synosh as run does.
function M.env_words(dir, extra)
  return environment(dir, extra)
end

local function read_file(path)
  local file = io.open(path, "rb")
  if not file then
    return nil
  end
  local text = file:read("a")
  file:close()
  return text
end
M.read_file = read_file

function M.write_file(path, text, mode)
  local file = assert(io.open(path, "wb"))
  file:write(text)
  file:close()
  if mode then
    os.execute("chmod " .. mode .. " " .. M.quote(path))
  end
  return path
end

-- tests/run sets SYNOSH_TEST_TMP and removes it at the end of the run.
local temporary_root = os.getenv("SYNOSH_TEST_TMP") or "/tmp"

--- Creates a fresh temporary folder and returns its path.
function M.tmpdir()
  local handle = io.popen("mktemp -d " .. M.quote(temporary_root .. "/synosh-test.XXXXXX"))
  local path = handle:read("l")
  handle:close()
  return path
end

local Sim = {}
Sim.__index = Sim

--- Starts the simulator. options: tls (boolean), fixture (path), args (list of
-- extra command-line arguments). Returns a Sim with url and control methods.
function M.start_sim(options)
  options = options or {}
  local dir = M.tmpdir()
  local words = { "python3", M.root .. "/tests/sim/dsm_sim.py", "--port", "0",
                  "--fixture", options.fixture or M.fixture, "--pull-delay", "0.2" }
  if options.tls then
    for _, word in ipairs { "--tls", "--cert", M.certs .. "/server.pem", "--key", M.certs .. "/server.key" } do
      words[#words + 1] = word
    end
  end
  for _, word in ipairs(options.args or {}) do
    words[#words + 1] = word
  end
  if M.capture_dir then
    -- Every request of the run, for the secrets audit at the end of the suite.
    words[#words + 1] = "--log"
    words[#words + 1] = M.capture_dir .. "/sim-" .. dir:match("[^/]+$") .. ".jsonl"
  end
  local command = string.format("sh -c 'echo $$ > %s/pid; exec \"$@\"' sim %s 2>%s/stderr",
    dir, M.quote_words(words), dir)
  local pipe = assert(io.popen(command, "r"))
  local url = pipe:read("l")
  if not url then
    error("the simulator did not start: " .. (read_file(dir .. "/stderr") or ""))
  end
  local sim = setmetatable({
    url = url, dir = dir, pipe = pipe, tls = options.tls,
    pid = (read_file(dir .. "/pid") or ""):match("%d+"),
  }, Sim)
  sim.control = core.http_client { cacert = options.tls and (M.certs .. "/ca.pem") or nil, timeout = 10 }
  return sim
end

function Sim:request(method, path, body)
  local status, text = self.control:request(method, self.url .. path, body and cjson.encode(body) or nil,
    body and { ["Content-Type"] = "application/json" } or nil)
  assert(status == 200, string.format("simulator control %s %s failed: %s %s", method, path,
    tostring(status), tostring(text)))
  return cjson.decode(text)
end

function Sim:log()
  return self:request("GET", "/_sim/log")
end

--- Returns the log records of /webapi requests for one API method.
function Sim:calls(api, method)
  local found = {}
  for _, record in ipairs(self:log()) do
    if record.api == api and (method == nil or record.method == method) then
      found[#found + 1] = record
    end
  end
  return found
end

function Sim:stats()
  return self:request("GET", "/_sim/stats")
end

function Sim:state()
  return self:request("GET", "/_sim/state")
end

function Sim:reset()
  return self:request("POST", "/_sim/reset", {})
end

function Sim:faults(list)
  return self:request("POST", "/_sim/faults", setmetatable(list, cjson.array_mt))
end

function Sim:config(settings)
  return self:request("POST", "/_sim/config", settings)
end

function Sim:expire()
  return self:request("POST", "/_sim/expire", {})
end

function Sim:stop()
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
  end
  self.pipe:close()
  self.control:close()
  os.execute("rm -rf " .. M.quote(self.dir))
  for _, dir in ipairs(self.scratch_dirs or {}) do
    os.execute("rm -rf " .. M.quote(dir))
  end
end

--- Connection options for the admin account on sim.
function M.login_options(sim, extra)
  local options = { url = sim.url, user = M.user, password = M.password, timeout = 10 }
  if sim.tls then
    options.cacert = M.certs .. "/ca.pem"
  end
  for key, value in pairs(extra or {}) do
    options[key] = value
  end
  return options
end

--- Opens a session on sim as admin.
function M.connect(sim, extra)
  return require("syno").connect(M.login_options(sim, extra))
end

--- Removes the ISO 8601 time that starts each line synosh logs off a terminal.
function M.strip_timestamps(text)
  return (("\n" .. text):gsub("\n%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[+-]%d%d:%d%d ", "\n"):sub(2))
end

--- Runs the synosh binary and returns {status =, stdout =, stderr =, log =}.
-- stderr has the time stamps of log lines removed; log is stderr as written.
-- options: args (list), env (extra variables; false removes one), stdin (text),
-- background (shell commands run while synosh runs, with $pid and $dir set:
-- $dir/stdout and $dir/stderr fill as synosh writes). The
-- environment starts empty except PATH, HOME and XDG folders in a new temporary folder.
function M.run(options)
  local dir = M.tmpdir()
  local words = M.synosh_words()
  for _, arg in ipairs(options.args or {}) do
    words[#words + 1] = arg
  end
  M.write_file(dir .. "/stdin", options.stdin or "")
  local command = string.format("env -i %s %s <%s/stdin >%s/stdout 2>%s/stderr",
    environment(dir, options.env), M.quote_words(words), dir, dir, dir)
  if options.background then
    command = string.format("%s & pid=$!; %s; wait $pid", command, options.background)
  end
  local script = M.write_file(dir .. "/run.sh", "dir=" .. M.quote(dir) .. "\n" .. command
    .. "\necho $? > " .. dir .. "/status\n")
  os.execute("sh " .. M.quote(script))
  local result = {
    status = tonumber(read_file(dir .. "/status")),
    stdout = read_file(dir .. "/stdout") or "",
    log = read_file(dir .. "/stderr") or "",
    dir = dir,
  }
  result.stderr = M.strip_timestamps(result.log)
  capture(result.stdout)
  capture(result.log)
  if not options.keep then
    os.execute("rm -rf " .. M.quote(dir))
  end
  return result
end

--- Runs the synosh binary in a pseudo-terminal through tests/helpers/pty_run.py.
-- options: args, env (as for run), dialog (list of {expect =, send =}).
-- Returns {status =, output =} where output is the terminal transcript.
function M.run_pty(options)
  local dir = M.tmpdir()
  local words = { "python3", M.root .. "/tests/helpers/pty_run.py" }
  for index, step in ipairs(options.dialog or {}) do
    local path = M.write_file(string.format("%s/send%d", dir, index), step.send .. "\n", "600")
    for _, word in ipairs { "--expect", step.expect, "--send-file", path } do
      words[#words + 1] = word
    end
  end
  words[#words + 1] = "--"
  for _, word in ipairs(M.synosh_words()) do
    words[#words + 1] = word
  end
  for _, arg in ipairs(options.args or {}) do
    words[#words + 1] = arg
  end
  local command = string.format("env -i %s %s >%s/output 2>&1 </dev/null; echo $? >%s/status",
    environment(dir, options.env, { TERM = "dumb" }), M.quote_words(words), dir, dir)
  os.execute(command)
  local result = { status = tonumber(read_file(dir .. "/status")), output = read_file(dir .. "/output") or "" }
  capture(result.output)
  os.execute("rm -rf " .. M.quote(dir))
  return result
end

--- Environment variables that point synosh at sim as admin with a password file.
function M.sim_env(sim, extra)
  local dir = M.tmpdir()
  -- sim:stop() removes it.
  sim.scratch_dirs = sim.scratch_dirs or {}
  sim.scratch_dirs[#sim.scratch_dirs + 1] = dir
  local password_file = M.write_file(dir .. "/password", M.password .. "\n", "600")
  local env = { SYNO_URL = sim.url, SYNO_USER = M.user, SYNO_PASSWORD_FILE = password_file }
  if sim.tls then
    env.SYNO_CACERT = M.certs .. "/ca.pem"
  end
  for key, value in pairs(extra or {}) do
    env[key] = value
  end
  return env
end

return M
