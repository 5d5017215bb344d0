-- The secrets audit, run last (busted sorts spec files by name): the output
-- of every synosh run of the suite and every request the simulators received
-- must not show the test password, a session id, a synotoken or a device
-- token, except the password in the body of a login POST.
local testenv = require "testenv"
local cjson = require "cjson"
local core = require "syno.core"

-- The spellings a value can take on the wire and in output.
local function spellings(value)
  local list = { value, core.escape(value) }
  list[#list + 1] = (core.escape(value):gsub("%%20", "+"))
  return list
end

local function contains_any(text, values)
  for _, value in ipairs(values) do
    if text:find(value, 1, true) then
      return value
    end
  end
  return nil
end

-- Reads every request that synosh sent to the simulators during the suite.
-- Requests the specs craft themselves (to test the simulator) carry no
-- synosh User-Agent and are left out.
local function records()
  local list = {}
  local handle = io.popen("ls " .. testenv.quote(testenv.capture_dir) .. "/sim-*.jsonl 2>/dev/null")
  for path in handle:lines() do
    for line in io.lines(path) do
      local record = cjson.decode(line)
      local agent = type(record.headers) == "table" and record.headers["User-Agent"] or ""
      if type(agent) == "string" and agent:match("^synosh/") then
        list[#list + 1] = record
      end
    end
  end
  handle:close()
  return list
end

describe("secrets audit", function()
  if not testenv.capture_dir then
    it("needs tests/run, which collects the output", function()
      pending("run through tests/run to audit the whole suite")
    end)
    return
  end

  local all = records()
  local output = testenv.read_file(testenv.capture_dir .. "/output.txt") or ""

  -- Every session id, synotoken and device token the clients sent.
  local tokens, seen = {}, {}
  local function collect(value)
    if type(value) == "string" and #value >= 8 and not seen[value] then
      seen[value] = true
      tokens[#tokens + 1] = value
    end
  end
  for _, record in ipairs(all) do
    for _, params in ipairs { record.query or {}, record.body or {} } do
      if type(params) == "table" then
        collect(params._sid)
        collect(params.device_id)
        collect(params.did)
      end
    end
    local headers = record.headers or {}
    collect(headers["X-SYNO-TOKEN"])
    collect(type(headers.Cookie) == "string" and headers.Cookie:match("id=([^;%s]+)") or nil)
  end

  it("has requests and output to search", function()
    assert.is_true(#all > 100, "simulator records: " .. #all)
    assert.is_true(#output > 1000, "bytes of output: " .. #output)
    assert.is_true(#tokens > 10, "session ids and tokens: " .. #tokens)
  end)

  it("finds the password only in login POST bodies", function()
    local password = spellings(testenv.password)
    local logins = 0
    for _, record in ipairs(all) do
      local where = string.format("request %s %s %s", tostring(record.seq), tostring(record.api),
        tostring(record.method))
      assert.is_nil(contains_any((record.path or "") .. "?" .. (record.raw_query or ""), password), where)
      assert.is_nil(contains_any(cjson.encode(record.headers or {}), password), where)
      if contains_any(record.raw_body or "", password) then
        assert.are.equal("SYNO.API.Auth", record.api, where)
        assert.are.equal("login", record.method, where)
        assert.are.equal("POST", record.http_method, where)
        logins = logins + 1
      end
    end
    assert.is_true(logins > 10)
  end)

  it("finds no password in any output", function()
    assert.is_nil(contains_any(output, spellings(testenv.password)))
  end)

  it("finds no session id or token in a URL", function()
    for _, record in ipairs(all) do
      local url = (record.path or "") .. "?" .. (record.raw_query or "")
      assert.is_nil(contains_any(url, tokens), string.format("request %s", tostring(record.seq)))
    end
  end)

  it("finds no session id or token in any output", function()
    assert.is_nil(contains_any(output, tokens))
  end)
end)
