--- --sandbox: runs scripts and snippets someone else wrote without letting
-- them start programs, load C code or write files outside one directory.
--
-- Blocked: os.execute, io.popen, package.loadlib, C modules (the C searchers
-- of require), binary chunks in load, the debug library (which could reach the
-- original functions through upvalues), syno.notify with a command, and
-- writes (io.open in a write mode, io.output, os.remove, os.rename,
-- os.tmpname, syno.lock) outside the directory given as --sandbox=DIR, or
-- everywhere when no directory is given. HTTP requests may go only to the NAS
-- of the command line, environment or profile. Reading files and calling the
-- NAS stay allowed: a sandboxed script works with the rights of the DSM account.

local core = require "syno.core"
local errors = require "syno.errors"

local M = {}

local function blocked(what, hint)
  errors.raise { kind = "sandbox", message = string.format("%s is disabled by --sandbox%s", what,
    hint and ("; " .. hint) or "") }
end

-- Returns the absolute, symlink-free path path would have: the file's own
-- when it exists, otherwise its directory's plus its name.
local function resolve(path)
  local real = core.realpath(path)
  if real then
    return real
  end
  local directory, name = path:match("^(.*)/([^/]*)$")
  if not directory then
    directory, name = ".", path
  end
  if directory == "" then
    directory = "/"
  end
  local real_directory = core.realpath(directory)
  if not real_directory or name == "" or name == "." or name == ".." then
    return nil
  end
  return (real_directory == "/" and "" or real_directory) .. "/" .. name
end

--- Installs the sandbox in the running Lua state. write_dir is the only
-- directory a script may write under, or nil for none.
function M.apply(write_dir)
  local root
  if write_dir then
    root = core.realpath(write_dir)
    if not root then
      errors.raise { kind = "usage", message = string.format(
        "--sandbox=%s: no such directory; create it or name another", write_dir) }
    end
  end

  local function check_write(what, path)
    if type(path) ~= "string" then
      return
    end
    local real = resolve(path)
    if not root then
      blocked(string.format("%s %q (writing files)", what, path), "give --sandbox=DIR to allow writes under DIR")
    end
    if not real or (real ~= root and real:sub(1, #root + 1) ~= root .. "/") then
      blocked(string.format("%s %q outside %s", what, path, root), "scripts may write only under " .. root)
    end
  end

  -- Load syno first, so its own notify command (from --notify-command, which
  -- the user gave) keeps the real io.popen.
  require "syno.notify"
  local syno = require "syno"

  os.execute = function()
    blocked("os.execute")
  end
  io.popen = function()
    blocked("io.popen")
  end
  package.loadlib = function()
    blocked("package.loadlib")
  end

  local open, output = io.open, io.output
  io.open = function(path, mode)
    if type(mode) == "string" and mode:find("[wa+]") then
      check_write("io.open", path)
    end
    return open(path, mode)
  end
  io.output = function(file)
    if type(file) == "string" then
      check_write("io.output", file)
    end
    return output(file)
  end
  local remove, rename = os.remove, os.rename
  os.remove = function(path)
    check_write("os.remove", path)
    return remove(path)
  end
  os.rename = function(from, to)
    check_write("os.rename", from)
    check_write("os.rename", to)
    return rename(from, to)
  end
  os.tmpname = function()
    blocked("os.tmpname", "write under the --sandbox=DIR directory instead")
  end

  -- Text chunks only: a crafted binary chunk can break the Lua VM.
  local real_load = load
  load = function(chunk, name, mode, env)
    if mode ~= nil and mode ~= "t" then
      blocked("load with mode " .. tostring(mode), "only text chunks (mode \"t\") may be loaded")
    end
    return real_load(chunk, name, "t", env)
  end
  loadfile = function(path, mode, env)
    if mode ~= nil and mode ~= "t" then
      blocked("loadfile with mode " .. tostring(mode), "only text chunks (mode \"t\") may be loaded")
    end
    local file, message = open(path or "/dev/stdin", "rb")
    if not file then
      return nil, message
    end
    local text = file:read("a")
    file:close()
    return real_load(text, "@" .. tostring(path), "t", env)
  end
  dofile = function(path)
    local chunk = assert(loadfile(path))
    return chunk()
  end

  -- require: Lua files and the modules built into synosh, no C modules.
  local searchers = package.searchers
  local kept = { searchers[1], searchers[2], searchers[3] }
  for i = #searchers, 1, -1 do
    searchers[i] = nil
  end
  for i, searcher in ipairs(kept) do
    searchers[i] = searcher
  end
  searchers[#searchers + 1] = function(name)
    return string.format("\n\tC modules such as %q are disabled by --sandbox", name)
  end
  package.cpath = ""

  -- The debug library could read the original functions out of the upvalues
  -- above; only traceback stays.
  local traceback = debug.traceback
  for key in pairs(debug) do
    local name = "debug." .. key
    debug[key] = function()
      blocked(name)
    end
  end
  debug.traceback = traceback
  package.loaded.debug = debug

  -- HTTP only to the NAS the user named, so a snippet cannot send what it
  -- reads elsewhere.
  local settings = require("syno.config").resolve(package.loaded["syno.options"] or {})
  local allowed_origin = settings.url and require("syno.dsm").normalize_url(settings.url):match("^(%a+://[^/]+)")
  local http_client = core.http_client
  core.http_client = function(options)
    local client = http_client(options)
    return setmetatable({}, { __index = {
      request = function(_, method, url, ...)
        local origin = type(url) == "string" and url:match("^(%a+://[^/]+)")
        if not allowed_origin or origin ~= allowed_origin then
          blocked(string.format("a request to %s", tostring(origin or url)), allowed_origin
            and ("scripts may reach only " .. allowed_origin) or "no NAS URL was given")
        end
        return client:request(method, url, ...)
      end,
      close = function()
        return client:close()
      end,
    }, __tostring = function()
      return tostring(client)
    end })
  end

  local lock = syno.lock
  syno.lock = function(path)
    check_write("syno.lock", path)
    return lock(path)
  end
  require("syno.notify").run = function()
    blocked("syno.notify.run", "use --notify-command on the command line")
  end
  local notify = syno.notify
  syno.notify = function(report, options)
    if options ~= nil then
      blocked("syno.notify with a command", "use --notify-command on the command line")
    end
    return notify(report)
  end
  syno.sandboxed = true
end

return M
