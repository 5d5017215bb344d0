-- Discovery, login, session handling, logout and dry run against the simulator.
local testenv = require "testenv"
local syno = require "syno"

describe("session", function()
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

  it("discovers through query.cgi first", function()
    local nas = testenv.connect(sim)
    local log = sim:log()
    assert.are.equal("/webapi/query.cgi", log[1].path)
    assert.are.equal("SYNO.API.Info", log[1].api)
    assert.are.equal("query", log[1].method)
    nas:close()
  end)

  it("logs in by POST with a strictly encoded password", function()
    local nas = testenv.connect(sim)
    local login = sim:calls("SYNO.API.Auth", "login")[1]
    assert.are.equal("POST", login.http_method)
    assert.are.equal("/webapi/entry.cgi", login.path)
    assert.are.equal("7", login.body.version)
    assert.are.equal("", login.raw_query)
    assert.are.equal(testenv.password, login.body.passwd)
    assert.matches("passwd=Tr0ub4dor%20%263%23%2B%25%C3%BC", login.raw_body, 1, true)
    assert.are.equal("sid", login.body.format)
    assert.are.equal("yes", login.body.enable_syno_token)
    nas:close()
  end)

  it("uses the auth path and version that Info reports", function()
    local dsm6 = testenv.start_sim { args = { "--auth-path", "auth.cgi", "--auth-max-version", "6" } }
    local nas = testenv.connect(dsm6)
    local login = dsm6:calls("SYNO.API.Auth", "login")[1]
    assert.are.equal("/webapi/auth.cgi", login.path)
    assert.are.equal("6", login.body.version)
    assert.is_true(#nas.image.list() > 0)
    nas:close()
    dsm6:stop()
  end)

  it("reuses one TCP connection for 1000 calls", function()
    -- Sessions of earlier tests that were never closed log out when collected.
    collectgarbage()
    sim:reset()
    local nas = testenv.connect(sim)
    for _ = 1, 1000 do
      nas.image.list { limit = 1 }
    end
    nas:close()
    local stats = sim:stats()
    assert.are.equal(1, stats.connections)
    local connections = {}
    for _, record in ipairs(sim:log()) do
      connections[record.conn] = true
    end
    assert.are.same({ [sim:log()[1].conn] = true }, connections)
    assert.is_true(stats.requests >= 1003)
  end)

  it("never retries a blocked IP (407)", function()
    sim:faults { { kind = "dsm_error", code = 407, api = "SYNO.API.Auth", method = "login", count = -1 } }
    local ok, err = pcall(testenv.connect, sim)
    assert.is_false(ok)
    assert.are.equal("auth", err.kind)
    assert.are.equal(407, err.code)
    assert.matches("blocked", err.message)
    assert.are.equal(1, #sim:calls("SYNO.API.Auth", "login"))
  end)

  it("wrong password raises auth with code 400", function()
    local ok, err = pcall(testenv.connect, sim, { password = "wrong" })
    assert.is_false(ok)
    assert.are.equal("auth", err.kind)
    assert.are.equal(400, err.code)
    assert.matches("login to " .. sim.url .. " as admin failed", err.message, 1, true)
    assert.matches('check the user name "admin" and its password', err.message, 1, true)
    assert.is_nil(err.message:find("wrong", 1, true))
  end)

  it("OTP account without a code raises otp_required", function()
    local ok, err = pcall(testenv.connect, sim, { user = "otpuser", password = testenv.users.otpuser.password })
    assert.is_false(ok)
    assert.are.equal("otp_required", err.kind)
    assert.are.equal(403, err.code)
    assert.matches("--otp", err.message, 1, true)
    assert.matches("for scheduled runs, add --remember-device NAME once", err.message, 1, true)
  end)

  it("OTP account logs in with its code", function()
    local otp_user = testenv.users.otpuser
    local nas = testenv.connect(sim, { user = "otpuser", password = otp_user.password, otp = otp_user.otp })
    assert.are.equal(otp_user.otp, sim:calls("SYNO.API.Auth", "login")[1].body.otp_code)
    nas:close()
  end)

  it("wrong OTP code raises auth with code 404", function()
    local ok, err = pcall(testenv.connect, sim, { user = "otpuser", password = testenv.users.otpuser.password,
                                                  otp = "000000" })
    assert.is_false(ok)
    assert.are.equal("auth", err.kind)
    assert.are.equal(404, err.code)
  end)

  it("logs out on close", function()
    local nas = testenv.connect(sim)
    nas:close()
    local logout = sim:calls("SYNO.API.Auth", "logout")
    assert.are.equal(1, #logout)
    assert.are.equal("POST", logout[1].http_method)
    assert.is_string(logout[1].body._sid)
    assert.are.equal(0, sim:stats().sessions)
  end)

  it("reports a NAS without Container Manager", function()
    local bare = testenv.start_sim { args = { "--no-docker" } }
    local nas = testenv.connect(bare)
    local ok, err = pcall(nas.image.list)
    nas:close()
    bare:stop()
    assert.is_false(ok)
    assert.matches("Container Manager (Docker) is not installed or not running on " .. bare.url,
      err.message, 1, true)
  end)

  it("rejects unknown connect options", function()
    local ok, err = pcall(syno.connect, { url = sim.url, usr = "admin" })
    assert.is_false(ok)
    assert.are.equal("usage", err.kind)
    assert.matches('unknown option "usr"', err.message, 1, true)
  end)

  it("rejects connect options of the wrong type", function()
    local ok, err = pcall(syno.connect, { url = sim.url, user = "admin", password = "x", timeout = "5" })
    assert.is_false(ok)
    assert.are.equal("usage", err.kind)
    assert.matches("option timeout must be a number, got string", err.message, 1, true)
  end)

  it("rejects an infinite or NaN timeout", function()
    for _, timeout in ipairs { math.huge, 0 / 0, 86401 } do
      local ok, err = pcall(syno.connect, { url = sim.url, user = "admin", password = "x", timeout = timeout })
      assert.is_false(ok)
      assert.are.equal("usage", err.kind)
      assert.matches("timeout must be a number of seconds greater than 0 and at most 86400", err.message, 1, true)
    end
  end)

  it("HTTP client rejects a timeout over a day", function()
    local core = require "syno.core"
    for _, timeout in ipairs { math.huge, -1, 0 / 0, 1e300 } do
      local ok, message = pcall(core.http_client, { timeout = timeout })
      assert.is_false(ok)
      assert.matches("timeout must be from 0 to 86400 seconds", message, 1, true)
    end
  end)

  it("rejects a URL without a scheme", function()
    local ok, err = pcall(syno.connect, { url = "nas.local:5001", user = "admin", password = "x" })
    assert.is_false(ok)
    assert.are.equal("usage", err.kind)
    assert.matches("https://nas.local:5001", err.message, 1, true)
  end)
end)

-- The session behaviour that image calls depend on, in both image API dialects.
for _, dialect in ipairs { "document", "container-manager" } do
  describe("session, " .. dialect .. " dialect", function()
    local sim

    setup(function()
      sim = testenv.start_sim { args = { "--dialect", dialect } }
    end)

    teardown(function()
      sim:stop()
    end)

    before_each(function()
      sim:reset()
    end)

    it("keeps the SID and token out of URLs", function()
      local nas = testenv.connect(sim)
      nas.image.list()
      nas.image.delete("redis:7.2")
      nas:close()
      local login = sim:calls("SYNO.API.Auth", "login")[1]
      local sid = nil
      for _, record in ipairs(sim:log()) do
        if record.headers.Cookie then
          sid = record.headers.Cookie:match("id=([^;]+)")
        end
      end
      assert.is_not_nil(sid)
      for _, record in ipairs(sim:log()) do
        assert.is_nil(record.raw_query:find(sid, 1, true), record.raw_query)
        assert.is_nil(record.raw_query:find("passwd", 1, true))
      end
      assert.is_not_nil(login)
    end)

    it("sends the synotoken on every call after login", function()
      local nas = testenv.connect(sim)
      nas.image.list()
      nas.image.delete("redis:7.2")
      for _, record in ipairs(sim:log()) do
        if record.api ~= "SYNO.API.Info" and record.method ~= "login" then
          assert.is_string(record.headers["X-SYNO-TOKEN"])
        end
      end
      nas:close()
    end)

    it("logs in again once after error 119", function()
      local nas = testenv.connect(sim)
      nas.image.list()
      sim:expire()
      local images = nas.image.list()
      assert.is_true(#images > 0)
      assert.are.equal(2, #sim:calls("SYNO.API.Auth", "login"))
      nas:close()
    end)

    it("logs in again after a session expires mid-run", function()
      sim:config { session_ttl_calls = 3 }
      local nas = testenv.connect(sim)
      for _ = 1, 10 do
        nas.image.list { limit = 1 }
      end
      assert.is_true(#sim:calls("SYNO.API.Auth", "login") >= 3)
      nas:close()
    end)

    it("raises when the session is lost right after a new login", function()
      local nas = testenv.connect(sim)
      sim:faults { { kind = "dsm_error", code = 119, api = "SYNO.Docker.Image", count = 2 } }
      local ok, err = pcall(nas.image.list)
      assert.is_false(ok)
      assert.are.equal("session", err.kind)
      assert.are.equal(119, err.code)
      assert.are.equal(2, #sim:calls("SYNO.API.Auth", "login"))
      assert.are.equal(2, #sim:calls("SYNO.Docker.Image", "list"))
      nas:close()
    end)

    it("dry run sends no write call", function()
      local nas = testenv.connect(sim, { dry_run = true })
      assert.is_true(nas.image.delete("redis:7.2"))
      assert.are.equal("dry-run", nas.image.pull("alpine:3.20"))
      assert.is_true(nas.image.registry.add { name = "x", url = "https://x.example" })
      assert.are.same({}, nas:call("SYNO.Docker.Image", "delete", 1, { repository = "redis", tag = "7" },
        { http = "POST" }))
      local results = nas.image.delete_many { "redis:7.2", "nginx:latest" }
      assert.is_true(results[1].ok)
      assert.is_true(results[2].ok)
      if dialect == "container-manager" then
        assert.are.same({ ImagesDeleted = {}, SpaceReclaimed = 0 }, nas.image.prune())
        local task = nas.image.upgrade("nginx")
        assert.are.equal("dry-run", task)
        assert.is_true(nas.image.wait(task).finished)
        assert.is_true(nas.image.registry.use("LinuxServer.io"))
        assert.is_true(nas.image.registry.remove("LinuxServer.io"))
      end
      nas:close()
      for _, record in ipairs(sim:log()) do
        assert.is_true(record.http_method == "GET" or record.api == "SYNO.API.Auth", record.method)
      end
      assert.are.equal(0, #sim:calls("SYNO.Docker.Image", "delete"))
    end)
  end)
end
