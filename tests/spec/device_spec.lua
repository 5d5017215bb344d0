-- Remembered devices of two-step verification, through the synosh binary:
-- --otp with --remember-device stores the device token, and later runs log in
-- with it and no code.
local testenv = require "testenv"
local cjson = require "cjson"
local core = require "syno.core"

local otp_user = testenv.users.otpuser

describe("remembered device", function()
  local sim, state

  setup(function()
    sim = testenv.start_sim { args = { "--dialect", "container-manager" } }
  end)

  teardown(function()
    sim:stop()
  end)

  before_each(function()
    sim:reset()
    state = testenv.tmpdir()
  end)

  after_each(function()
    os.execute("rm -rf " .. testenv.quote(state))
  end)

  local function env()
    return testenv.sim_env(sim, { SYNO_USER = "otpuser", SYNO_PASSWORD_FILE = false,
                                  SYNO_PASSWORD = otp_user.password, XDG_STATE_HOME = state })
  end

  local function token_path()
    return string.format("%s/synosh/devices/otpuser@%s", state, core.escape(sim.url:gsub("^http://", "")))
  end

  local function list(extra)
    local args = {}
    for _, arg in ipairs(extra or {}) do
      args[#args + 1] = arg
    end
    for _, arg in ipairs { "-e", "print(#require('syno.image').list())" } do
      args[#args + 1] = arg
    end
    return testenv.run { args = args, env = env() }
  end

  local function remember()
    local result = list { "--otp", otp_user.otp, "--remember-device", "cron box" }
    assert.are.equal(0, result.status, result.stderr)
    return result
  end

  local function stored()
    local text = testenv.read_file(token_path())
    assert.is_string(text, "no device token file at " .. token_path())
    return cjson.decode(text)
  end

  local function stored_token()
    return stored().device_id
  end

  it("stores the token in a private file", function()
    local result = remember()
    assert.matches('remembered this device as "cron box"', result.stderr, 1, true)
    local file = stored()
    assert.are.equal("cron box", file.device_name)
    assert.is_string(file.device_id)
    assert.are.equal(tonumber("600", 8), core.file_mode(token_path()))
    assert.are.equal(tonumber("700", 8), core.file_mode(state .. "/synosh/devices"))
    local login = sim:calls("SYNO.API.Auth", "login")[1]
    assert.are.equal("yes", login.body.enable_device_token)
    assert.are.equal("cron box", login.body.device_name)
    assert.are.equal(otp_user.otp, login.body.otp_code)
  end)

  it("later runs log in without a code", function()
    remember()
    local token = stored_token()
    local result = list()
    assert.are.equal(0, result.status, result.stderr)
    local login = sim:calls("SYNO.API.Auth", "login")[2]
    assert.are.equal(token, login.body.device_id)
    assert.are.equal("cron box", login.body.device_name)
    assert.is_nil(login.body.otp_code)
    assert.is_nil(login.body.enable_device_token)
  end)

  it("logs in again with the token", function()
    remember()
    local script = testenv.write_file(testenv.tmpdir() .. "/relogin.lua", string.format([[
      local image = require "syno.image"
      image.list()
      local control = require("syno.core").http_client { timeout = 10 }
      control:request("POST", %q, "{}", { ["Content-Type"] = "application/json" })
      print(#image.list())
    ]], sim.url .. "/_sim/expire"))
    local result = testenv.run { args = { "--otp", otp_user.otp, "--remember-device", "cron box", script },
                                 env = env() }
    assert.are.equal(0, result.status, result.stderr)
    local logins = sim:calls("SYNO.API.Auth", "login")
    assert.are.equal(3, #logins)
    assert.are.equal(stored_token(), logins[3].body.device_id)
    assert.is_nil(logins[3].body.otp_code)
  end)

  it("keeps the token out of URLs and output", function()
    remember()
    local token = stored_token()
    local result = testenv.run { args = { "--verbose", "-e", "print(#require('syno.image').list())" },
                                 env = env() }
    assert.are.equal(0, result.status, result.stderr)
    assert.is_nil(result.stdout:find(token, 1, true))
    assert.is_nil(result.stderr:find(token, 1, true))
    for _, record in ipairs(sim:log()) do
      assert.is_nil(record.raw_query:find(token, 1, true))
    end
  end)

  it("rejected token names its file", function()
    remember()
    sim:reset()  -- forgets every device token
    local result = list()
    assert.are.equal(3, result.status)
    assert.matches("device token remembered in " .. token_path() .. " was not accepted", result.stderr, 1, true)
    assert.matches("--otp CODE --remember-device NAME", result.stderr, 1, true)
  end)

  it("warns when no token comes back", function()
    local plain = testenv.sim_env(sim, { XDG_STATE_HOME = state })
    local result = testenv.run { args = { "--remember-device", "box", "-e", "require('syno.image').list()" },
                                 env = plain }
    assert.are.equal(0, result.status, result.stderr)
    assert.matches("returned no device token", result.stderr, 1, true)
    assert.is_nil(testenv.read_file(state .. "/synosh/devices/admin@" .. core.escape(sim.url:gsub("^http://", ""))))
  end)
end)

describe("remembered device on DSM 6", function()
  local sim, state

  setup(function()
    sim = testenv.start_sim { args = { "--auth-path", "auth.cgi", "--auth-max-version", "6" } }
    state = testenv.tmpdir()
  end)

  teardown(function()
    sim:stop()
    os.execute("rm -rf " .. testenv.quote(state))
  end)

  it("accepts the token as did", function()
    local env = testenv.sim_env(sim, { SYNO_USER = "otpuser", SYNO_PASSWORD_FILE = false,
                                       SYNO_PASSWORD = otp_user.password, XDG_STATE_HOME = state })
    local list = { "-e", "print(#require('syno.image').list())" }
    local first = testenv.run { args = { "--otp", otp_user.otp, "--remember-device", "nas6", list[1], list[2] },
                                env = env }
    assert.are.equal(0, first.status, first.stderr)
    local second = testenv.run { args = list, env = env }
    assert.are.equal(0, second.status, second.stderr)
    local logins = sim:calls("SYNO.API.Auth", "login")
    assert.are.equal("6", logins[2].body.version)
    assert.is_string(logins[2].body.device_id)
    assert.is_nil(logins[2].body.otp_code)
  end)
end)
