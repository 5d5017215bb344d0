--- Remembered devices of two-step verification. A login with --otp and
-- --remember-device NAME receives a device token from DSM, which synosh
-- stores in a file of mode 0600. Later logins of the same account at the same
-- NAS send it as device_id in place of a two-step code, so scheduled jobs
-- need no code.
--
-- The file is $XDG_STATE_HOME/synosh/devices/<account>@<host:port> (default
-- ~/.local/state/synosh/devices/...), with the account and host
-- percent-encoded, and holds {"device_name": ..., "device_id": ...}. The
-- token is a secret: it goes only into that file and the login's POST body.

local core = require "syno.core"
local cjson = require "cjson.safe"

local M = {}

--- Returns the state folder of synosh, or nil when neither XDG_STATE_HOME nor
-- HOME is an absolute path.
function M.state_directory(getenv)
  getenv = getenv or os.getenv
  local state_home = getenv("XDG_STATE_HOME")
  if state_home and state_home:sub(1, 1) == "/" then
    return state_home .. "/synosh"
  end
  local home = getenv("HOME")
  if home and home:sub(1, 1) == "/" then
    return home .. "/.local/state/synosh"
  end
  return nil
end

--- Returns the path of the device token file of user at url (a normalized
-- NAS URL), or nil when there is no state folder.
function M.path(url, user, getenv)
  local directory = M.state_directory(getenv)
  if not directory then
    return nil
  end
  local host = url:gsub("^%a[%w+.-]*://", "")
  return string.format("%s/devices/%s@%s", directory, core.escape(user), core.escape(host))
end

local function read_token(path)
  local file = io.open(path, "r")
  if not file then
    return nil
  end
  local text = file:read("a")
  file:close()
  local stored = cjson.decode(text or "")
  if type(stored) ~= "table" or type(stored.device_id) ~= "string" or stored.device_id == "" then
    error(string.format("ignoring the device token file %s: it is not valid; delete it and run "
      .. "once with --otp CODE --remember-device NAME", path), 0)
  end
  local mode = core.file_mode(path)
  if mode and mode & 0x3f ~= 0 then
    core.message("warning", string.format("device token file %s is readable by other users "
      .. "(mode %04o); run: chmod 600 %s", path, mode, path))
  end
  return stored.device_id, type(stored.device_name) == "string" and stored.device_name or nil
end

--- Returns the device store of user at url for syno.dsm: name (the name to
-- remember this device under, or nil), path, load() --> token, name, and
-- save(token, name).
function M.store(url, user, name)
  local path = M.path(url, user)
  return {
    name = name,
    path = path,
    load = function()
      if not path then
        return nil
      end
      return read_token(path)
    end,
    save = function(token, device_name)
      if not path then
        error("neither XDG_STATE_HOME nor HOME is set to an absolute path", 0)
      end
      local ok, message = core.make_directories(path:match("^(.*)/[^/]*$"))
      if not ok then
        error(message, 0)
      end
      ok, message = core.write_private_file(path,
        cjson.encode { device_name = device_name, device_id = token } .. "\n")
      if not ok then
        error(message, 0)
      end
    end,
  }
end

return M
