-- --pinned-pubkey: a self-signed NAS is accepted when its public key matches
-- the pin and rejected otherwise, as curl's option of the same name does.
local testenv = require "testenv"

-- Returns "sha256//BASE64" of the public key in a PEM certificate or key file.
local function pin_of(pem_file, is_key)
  local extract = is_key and "openssl pkey -in %s -pubout" or "openssl x509 -in %s -pubkey -noout"
  local handle = io.popen(string.format(extract .. " | openssl pkey -pubin -outform der"
    .. " | openssl dgst -sha256 -binary | openssl enc -base64", testenv.quote(pem_file)))
  local digest = handle:read("l")
  handle:close()
  return "sha256//" .. digest
end

describe("--pinned-pubkey", function()
  local sim

  setup(function()
    sim = testenv.start_sim { tls = true }
  end)

  teardown(function()
    sim:stop()
  end)

  before_each(function()
    sim:reset()
  end)

  local function run(pin, extra)
    local env = testenv.sim_env(sim, extra)
    env.SYNO_CACERT = false
    return testenv.run { args = { "--pinned-pubkey", pin, "-e", "print(#require('syno.image').list())" },
      env = env }
  end

  it("accepts the NAS whose key matches, without its CA", function()
    local result = run(pin_of(testenv.certs .. "/server.pem"))
    assert.are.equal(0, result.status, result.stderr)
    assert.matches("^%d+\n$", result.stdout)
    assert.are.equal("", result.stderr)
  end)

  it("accepts one matching pin among several", function()
    local pins = pin_of(testenv.certs .. "/other-ca.pem") .. ";" .. pin_of(testenv.certs .. "/server.pem")
    local result = run(pins)
    assert.are.equal(0, result.status, result.stderr)
  end)

  it("rejects the NAS when the key differs, with exit status 4", function()
    local result = run(pin_of(testenv.certs .. "/other-ca.pem"))
    assert.are.equal(4, result.status)
    assert.matches("the NAS's public key does not match --pinned-pubkey", result.stderr, 1, true)
    assert.are.equal("", result.stdout)
    -- Nothing reached the NAS's API, the login included.
    assert.are.equal(0, #sim:log())
  end)

  it("rejects a self-signed NAS without a pin or CA", function()
    local env = testenv.sim_env(sim)
    env.SYNO_CACERT = false
    local result = testenv.run { args = { "-e", "require('syno.image').list()" }, env = env }
    assert.are.equal(4, result.status)
  end)

  it("rejects a pin that is not sha256//BASE64", function()
    local result = run("abc123")
    assert.are.equal(2, result.status)
    assert.matches('invalid --pinned-pubkey "abc123": give sha256//', result.stderr, 1, true)
  end)

  it("is read from SYNO_PINNED_PUBKEY", function()
    local env = testenv.sim_env(sim, { SYNO_PINNED_PUBKEY = pin_of(testenv.certs .. "/server.pem") })
    env.SYNO_CACERT = false
    local result = testenv.run { args = { "-e", "print(#require('syno.image').list())" }, env = env }
    assert.are.equal(0, result.status, result.stderr)
  end)
end)
