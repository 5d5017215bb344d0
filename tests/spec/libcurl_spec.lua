-- libcurl is loaded with dlopen on the first HTTP client, not at start. A
-- libcurl.so.4 that is not a library, found first through LD_LIBRARY_PATH,
-- stands for a machine without libcurl.
local testenv = require "testenv"

describe("libcurl loading", function()
  local dir, env

  setup(function()
    dir = testenv.tmpdir()
    testenv.write_file(dir .. "/libcurl.so.4", "not a shared library\n")
    env = { LD_LIBRARY_PATH = dir }
  end)

  teardown(function()
    os.execute("rm -rf " .. testenv.quote(dir))
  end)

  it("waits for the first client", function()
    local result = testenv.run { args = { "-e", "print(require('cjson').encode({1}))" }, env = env }
    assert.are.equal(0, result.status)
    assert.are.equal("[1]\n", result.stdout)
    assert.are.equal("", result.stderr)
  end)

  it("reports a missing libcurl in one line", function()
    local result = testenv.run {
      args = { "--url", "http://127.0.0.1:9", "--user", "admin", "-e", "require('syno.image').list()" },
      env = env,
    }
    assert.are.equal(1, result.status)
    assert.matches("^synosh: error: cannot create an HTTP client: cannot load libcurl%.so%.4 %(.*%); "
      .. "install the libcurl4 package\n$", result.stderr)
  end)

  it("version says when libcurl is missing", function()
    local result = testenv.run { args = { "--version" }, env = env }
    assert.are.equal(0, result.status)
    assert.matches("^synosh %d+%.%d+%.%d+ %(Lua 5%.4%.%d+, libcurl not found%)\n$", result.stdout)
  end)
end)
