-- Bad responses from the NAS: each becomes one clear error of the right kind.
local testenv = require "testenv"
local syno = require "syno"

describe("bad answers", function()
  local sim, nas

  setup(function()
    sim = testenv.start_sim()
  end)

  teardown(function()
    sim:stop()
  end)

  before_each(function()
    sim:reset()
    nas = testenv.connect(sim)
  end)

  after_each(function()
    nas:close()
  end)

  local function list_error(fault)
    sim:faults { fault }
    local ok, err = pcall(nas.image.list)
    assert.is_false(ok)
    assert.is_true(syno.errors.is(err))
    assert.is_nil(tostring(err):find("\n", 1, true))
    return err
  end

  it("HTML login portal names URL, status and type", function()
    local err = list_error { kind = "html", api = "SYNO.Docker.Image" }
    assert.are.equal("protocol", err.kind)
    assert.are.equal(200, err.http_status)
    assert.matches(sim.url .. "/webapi/entry.cgi", err.message, 1, true)
    assert.matches("HTTP 200", err.message, 1, true)
    assert.matches("text/html", err.message, 1, true)
    assert.matches("instead of JSON", err.message, 1, true)
    assert.matches("<!DOCTYPE", err.message, 1, true)
  end)

  it("truncated JSON is a protocol error", function()
    local err = list_error { kind = "truncate", api = "SYNO.Docker.Image" }
    assert.are.equal("protocol", err.kind)
    assert.matches("invalid or truncated JSON", err.message, 1, true)
  end)

  it("body cut short is a network error", function()
    -- A read is tried three times, so the fault hits every attempt.
    local err = list_error { kind = "cut", api = "SYNO.Docker.Image", count = -1 }
    assert.are.equal("network", err.kind)
    assert.are.equal(3, #sim:calls("SYNO.Docker.Image", "list"))
  end)

  it("read is retried after a cut body", function()
    sim:faults { { kind = "cut", api = "SYNO.Docker.Image", method = "list", count = 2 } }
    local images = nas.image.list()
    assert.is_true(#images > 10)
    assert.are.equal(3, #sim:calls("SYNO.Docker.Image", "list"))
  end)

  it("timeout is not retried", function()
    local slow = testenv.connect(sim, { timeout = 0.5 })
    sim:faults { { kind = "delay", seconds = 1.5, api = "SYNO.Docker.Image", method = "list", count = -1 } }
    local ok, err = pcall(slow.image.list)
    assert.is_false(ok)
    assert.are.equal("timeout", err.kind)
    -- The simulator logs a request when its delayed response is sent, so wait
    -- for that record, then as long again for any second attempt.
    local core = require "syno.core"
    for _ = 1, 100 do
      if #sim:calls("SYNO.Docker.Image", "list") > 0 then
        break
      end
      core.sleep(0.05)
    end
    core.sleep(1.6)
    assert.are.equal(1, #sim:calls("SYNO.Docker.Image", "list"))
    slow:close()
  end)

  it("write is not retried after a dropped connection", function()
    sim:faults { { kind = "drop", api = "SYNO.Docker.Image", method = "delete", count = -1 } }
    local ok, err = pcall(nas.image.delete, "redis:7.2")
    assert.is_false(ok)
    assert.are.equal("network", err.kind)
    assert.are.equal(1, #sim:calls("SYNO.Docker.Image", "delete"))
  end)

  it("dropped connection is a network error", function()
    -- libcurl sends a read once more on a fresh connection when a reused one
    -- drops before any response, and synosh tries a read three times, so the
    -- fault hits every attempt.
    local err = list_error { kind = "drop", api = "SYNO.Docker.Image", count = -1 }
    assert.are.equal("network", err.kind)
    assert.matches("the connection to " .. sim.url .. " closed during SYNO.Docker.Image list", err.message, 1, true)
    assert.is_nil(err.message:find("check --url", 1, true))
  end)

  it("truncated login hides the session id", function()
    sim:faults { { kind = "truncate", api = "SYNO.API.Auth", method = "login" } }
    local ok, err = pcall(testenv.connect, sim)
    assert.is_false(ok)
    assert.are.equal("protocol", err.kind)
    assert.matches('sid\\":\\"<hidden>', err.message, 1, true)
  end)

  it("HTTP 502 names the status", function()
    local err = list_error { kind = "http_status", status = 502, api = "SYNO.Docker.Image" }
    assert.are.equal("protocol", err.kind)
    assert.are.equal(502, err.http_status)
    assert.matches("HTTP 502", err.message, 1, true)
  end)

  it("DSM error carries code and meaning", function()
    local err = list_error { kind = "dsm_error", code = 105, api = "SYNO.Docker.Image" }
    assert.are.equal("permission", err.kind)
    assert.are.equal(105, err.code)
    assert.are.equal("SYNO.Docker.Image", err.api)
    assert.are.equal("list", err.method)
    assert.matches("session has no permission", err.message, 1, true)
  end)

  it("slow answer past the timeout", function()
    local quick = testenv.connect(sim, { timeout = 1 })
    sim:faults { { kind = "delay", seconds = 3, api = "SYNO.Docker.Image" } }
    local ok, err = pcall(quick.image.list)
    quick:close()
    assert.is_false(ok)
    assert.are.equal("timeout", err.kind)
    assert.matches("timed out", err.message, 1, true)
  end)

  it("connection refused is a network error", function()
    local ok, err = pcall(syno.connect, { url = "http://127.0.0.1:1", user = "admin", password = "x" })
    assert.is_false(ok)
    assert.are.equal("network", err.kind)
    assert.matches("cannot reach http://127.0.0.1:1", err.message, 1, true)
  end)
end)

describe("TLS", function()
  local sim

  setup(function()
    sim = testenv.start_sim { tls = true }
  end)

  teardown(function()
    sim:stop()
  end)

  it("rejects an unknown certificate by default", function()
    local ok, err = pcall(syno.connect, { url = sim.url, user = testenv.user, password = testenv.password })
    assert.is_false(ok)
    assert.are.equal("tls", err.kind)
    assert.matches("--cacert FILE", err.message, 1, true)
    assert.matches("--insecure", err.message, 1, true)
  end)

  it("rejects a certificate from another CA", function()
    local ok, err = pcall(testenv.connect, sim, { cacert = testenv.certs .. "/other-ca.pem" })
    assert.is_false(ok)
    assert.are.equal("tls", err.kind)
  end)

  it("accepts the certificate with --cacert", function()
    local nas = testenv.connect(sim)
    assert.is_true(#nas.image.list() > 0)
    nas:close()
  end)

  it("accepts any certificate with insecure", function()
    local nas = syno.connect { url = sim.url, user = testenv.user, password = testenv.password, insecure = true }
    assert.is_true(#nas.image.list() > 0)
    nas:close()
  end)
end)
