-- Fuzz driver for the response handling path: arbitrary HTTP responses go
-- through syno.dsm (envelope decoding with cjson, error mapping, discovery,
-- login, re-login) and syno.functions (dialect results) exactly as the
-- client uses them. Only the transport is replaced: instead of libcurl, each
-- request takes the next response from the input. src/http.c itself is
-- covered by the test suite against the simulator.
--
-- Every call must return or raise a syno.Error whose message is one line;
-- a Lua runtime error or a crash is a bug.
--
-- Input: responses separated by NUL bytes, used in order. A response is
--   [STATUS CONTENT-TYPE [xCOUNT]\n]BODY     an HTTP response; without the
--                                           line, 200 application/json
--   NET KIND CURL-CODE\nDETAIL               a transport failure (KIND is
--                                           network, tls, timeout, ...)
-- With xCOUNT, BODY is cut at \1 bytes into parts, and every second part
-- (the 2nd, 4th, ...) is repeated COUNT times. A BODY without \1 is repeated
-- whole, and the result stops at MAX_BODY. So a short input stands for deep
-- or large JSON, such as "[" x60000 deep or a list of thousands of images.
-- Once the responses run out, every request fails as a reset connection.

local core = require "syno.core"
local dsm = require "syno.dsm"
local errors = require "syno.errors"
local functions = require "syno.functions"

local PASSWORD = "fuzz-Secret-pw"
-- 64 KiB nests more than 60 times deeper than cjson's limit of 1,000, and
-- has room for a list of hundreds of full images. Larger bodies take the same paths and
-- only cost time: at 1 MiB an input took up to 145 ms, at 64 KiB 9 ms.
local MAX_BODY = 64 * 1024

local KINDS = {
  usage = true, auth = true, otp_required = true, permission = true, not_found = true,
  session = true, network = true, tls = true, timeout = true, protocol = true, api = true,
  interrupted = true, unsupported = true,
}

-- Reads that fail on the way are retried; without the wait between tries.
dsm.retry_delay = 0

-- Messages go nowhere, but each must be one line.
local messages_ok = true
core.message = function(_, text)
  if type(text) ~= "string" or text:find("\n", 1, true) then
    messages_ok = false
  end
end

-- Repeats every second \1-separated part of body count times, keeping the
-- result under MAX_BODY bytes.
local function expand(body, count)
  local parts = {}
  for part in (body .. "\1"):gmatch("(.-)\1") do
    parts[#parts + 1] = part
  end
  if #parts == 1 then
    parts = { "", body, "" }
  end
  local repeated = 0
  for index = 2, #parts, 2 do
    repeated = repeated + #parts[index]
  end
  local times = math.min(count, MAX_BODY // math.max(repeated, 1))
  for index = 2, #parts, 2 do
    parts[index] = parts[index]:rep(times)
  end
  return table.concat(parts)
end

local function parse_response(chunk)
  local kind, code, detail = chunk:match("^NET (%a+) (%d+)\n([^\n]*)")
  if kind then
    return { failure = kind, curl_code = tonumber(code), detail = detail }
  end
  local status, content_type, rest = chunk:match("^(%d%d%d) ([^\n]*)\n(.*)$")
  if not status then
    return { status = 200, content_type = "application/json", body = chunk }
  end
  local plain_type, count = content_type:match("^(.-) x(%d+)$")
  local body = rest
  if plain_type then
    content_type = plain_type
    body = expand(rest, tonumber(count) or 1)
  end
  return { status = tonumber(status), content_type = content_type, body = body }
end

local function split_responses(input)
  local responses = {}
  for chunk in (input .. "\0"):gmatch("(.-)%z") do
    responses[#responses + 1] = parse_response(chunk)
  end
  return responses
end

-- A transport with the interface of core.http_client's handles. Its
-- exhausted field turns true at the first request past the last response.
local function fake_transport(responses)
  local next_index = 1
  local transport = { exhausted = false }
  function transport.request(_, method, url, body, headers)
    assert(method == "GET" or method == "POST", "bad method")
    assert(type(url) == "string" and (body == nil or type(body) == "string"), "bad request")
    assert(headers == nil or type(headers) == "table", "bad headers")
    local response = responses[next_index]
    next_index = next_index + 1
    if not response then
      transport.exhausted = true
      return nil, "network", "Recv failure: Connection reset by peer", 56
    end
    if response.failure then
      return nil, response.failure, response.detail, response.curl_code
    end
    return response.status, response.body, response.content_type
  end
  function transport.close() end
  return transport
end

local function check(condition, message)
  if not condition then
    error(message, 0)
  end
end

local function check_error(err, where, input)
  check(errors.is(err), string.format("%s raised a plain Lua error: %s", where, tostring(err)))
  check(KINDS[err.kind], string.format("%s raised an error of unknown kind %s", where, tostring(err.kind)))
  check(type(err.message) == "string", where .. " raised an error without a message")
  check(not err.message:find("\n", 1, true), where .. " raised a message of several lines: " .. err.message)
  check(tostring(err) == err.message, where .. ": tostring(err) is not the message")
  if not input:find(PASSWORD, 1, true) then
    check(not err.message:find(PASSWORD, 1, true), where .. " put the password into a message")
  end
end

-- Runs fn(...) and checks that it returns or raises a clean error.
local function attempt(where, input, fn, ...)
  local results = table.pack(pcall(fn, ...))
  if not results[1] then
    check_error(results[2], where, input)
    return nil
  end
  return table.unpack(results, 2, results.n)
end

-- The calls run in this order until the responses run out: once a call
-- has met the reset connection that stands for the end of the input, the
-- later calls would only meet it again, so they are skipped. That keeps
-- short inputs cheap; session:close still runs.
local function run_session(input, session)
  local image = functions.image_module(function()
    return session
  end)

  local steps = {
    function()
      local images, total = attempt("image.list", input, image.list)
      if images ~= nil then
        check(type(images) == "table", "image.list returned a " .. type(images))
        for _, item in ipairs(images) do
          check(type(item) == "table", "image.list returned an image that is a " .. type(item))
        end
        check(total == nil or type(total) == "number", "image.list returned a total of type " .. type(total))
      end
    end,
    function() attempt("image.get", input, image.get, "nginx:1.25") end,
    function() attempt("image.delete", input, image.delete, "nginx", "1.25", { force = true }) end,
    function() attempt("image.pull", input, image.pull, "ghcr.io/home-assistant/home-assistant:stable") end,
    function()
      local results = attempt("image.search", input, image.search, "nginx")
      if results ~= nil then
        check(type(results) == "table", "image.search returned a " .. type(results))
      end
    end,
    function()
      local registries = attempt("image.registry.list", input, image.registry.list)
      if registries ~= nil then
        check(type(registries) == "table", "image.registry.list returned a " .. type(registries))
      end
    end,
    function()
      attempt("image.registry.add", input, image.registry.add,
        { name = "lab", url = "https://registry.lan:5000", username = "ci", password = PASSWORD })
    end,
    function()
      attempt("session:call", input, session.call, session, "SYNO.Core.System", "info", 1, { type = "storage" })
    end,
  }
  for _, step in ipairs(steps) do
    if session.http.exhausted then
      break
    end
    step()
  end

  -- close() returns nil, err instead of raising.
  local ok, err = attempt("session:close", input, session.close, session)
  if not ok then
    if err ~= nil then
      check_error(err, "session:close", input)
    end
  end
end

return function(input)
  local session = dsm.new {
    url = "https://127.0.0.1:5001", user = "admin", password = PASSWORD, timeout = 10,
  }
  session.http:close()
  session.http = fake_transport(split_responses(input))
  messages_ok = true
  run_session(input, session)
  check(messages_ok, "a message to the user has several lines")
end
