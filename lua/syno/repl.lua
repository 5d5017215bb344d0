--- The interactive shell's Lua side: globals, prompt, result printing, tab
-- completion, history filter and help. src/repl.c reads the lines, runs them
-- and calls the functions here.

local format = require "syno.format"

local M = {}

-- Nesting levels that format_value shows before it writes "{...}".
M.max_depth = 6

-- Set by the host to a function that returns the terminal width that readline
-- detected, or nil when it is unknown.
M.terminal_columns = nil

--- Returns the width that tables are fitted to: COLUMNS, else the terminal's,
-- else 80.
function M.width()
  local columns = tonumber(os.getenv("COLUMNS") or "")
  if not columns and M.terminal_columns then
    columns = M.terminal_columns()
  end
  if not columns or columns < 20 then
    return 80
  end
  return math.floor(columns)
end

-- Text helpers ------------------------------------------------------------

-- Returns the number of terminal columns that text takes (one per UTF-8
-- character; wide characters are not taken into account).
local function display_width(text)
  return utf8.len(text) or #text
end

-- Cuts text to at most width columns, ending it with "…" when it was cut.
local function truncate(text, width)
  if display_width(text) <= width then
    return text
  end
  if width < 1 then
    return ""
  end
  local cut = utf8.offset(text, width) or (width + 1)
  return text:sub(1, cut - 1) .. "…"
end

local function pad(text, width)
  return text .. string.rep(" ", width - display_width(text))
end

-- Error values ------------------------------------------------------------

--- Returns true for an error object: a table whose kind and message are strings.
function M.is_error(value)
  return type(value) == "table" and type(rawget(value, "kind")) == "string"
    and type(rawget(value, "message")) == "string"
end

-- Pretty printer ----------------------------------------------------------

local identifier = "^[%a_][%w_]*$"
local keywords = {}
for word in ([[and break do else elseif end false for function goto if in
               local nil not or repeat return then true until while]]):gmatch("%a+") do
  keywords[word] = true
end

local function format_scalar(value)
  if type(value) == "string" then
    return (string.format("%q", value):gsub("\\\n", "\\n"))
  end
  return tostring(value)
end

local function format_key(key)
  if type(key) == "string" and key:match(identifier) and not keywords[key] then
    return key
  end
  return "[" .. format_scalar(key) .. "]"
end

-- Orders keys as numbers first (ascending), then strings, then the rest by
-- their text, so the output is the same on every run.
local type_rank = { number = 1, string = 2 }
local function compare_keys(a, b)
  local rank_a, rank_b = type_rank[type(a)] or 3, type_rank[type(b)] or 3
  if rank_a ~= rank_b then
    return rank_a < rank_b
  end
  if rank_a == 3 then
    return tostring(a) < tostring(b)
  end
  return a < b
end

local function sorted_keys(t)
  local keys = {}
  for key in next, t do
    keys[#keys + 1] = key
  end
  table.sort(keys, compare_keys)
  return keys
end

local function has_tostring(value)
  local meta = getmetatable(value)
  return type(meta) == "table" and rawget(meta, "__tostring") ~= nil
end

local format_table

-- Formats value as it appears inside a table. open contains the tables on
-- the path from the root, for cycle detection.
local function format_nested(value, indent, depth, open)
  if type(value) ~= "table" then
    return format_scalar(value)
  end
  if open[value] then
    return "<cycle>"
  end
  if M.is_error(value) then
    return "<error: " .. value.message .. ">"
  end
  if has_tostring(value) then
    return tostring(value)
  end
  if depth >= M.max_depth then
    return next(value) == nil and "{}" or "{...}"
  end
  return format_table(value, indent, depth, open)
end

function format_table(t, indent, depth, open)
  local keys = sorted_keys(t)
  if #keys == 0 then
    return "{}"
  end
  open[t] = true
  local length = #t
  local items = {}
  local inline = true
  for _, key in ipairs(keys) do
    local value = t[key]
    local text = format_nested(value, indent .. "  ", depth + 1, open)
    if math.type(key) == "integer" and key >= 1 and key <= length then
      items[#items + 1] = text
    else
      items[#items + 1] = format_key(key) .. " = " .. text
    end
    if text:find("\n", 1, true) then
      inline = false
    end
  end
  open[t] = nil

  local one_line = "{ " .. table.concat(items, ", ") .. " }"
  if inline and #indent + display_width(one_line) <= M.width() then
    return one_line
  end
  local inner = indent .. "  "
  return "{\n" .. inner .. table.concat(items, ",\n" .. inner) .. ",\n" .. indent .. "}"
end

--- Formats any value for reading: strings quoted, tables with sorted keys,
-- nesting up to M.max_depth and "<cycle>" for a table inside itself.
function M.format_value(value)
  if type(value) == "table" and not has_tostring(value) then
    return format_table(value, "", 0, {})
  end
  return format_nested(value, "", 0, {})
end

-- Image tables ------------------------------------------------------------

--- Returns true for a non-empty array of records with repository, tag and id
-- fields, such as image.list returns.
function M.is_image_list(value)
  if type(value) ~= "table" or has_tostring(value) or #value == 0 then
    return false
  end
  for index, record in ipairs(value) do
    if type(record) ~= "table" or record.repository == nil or record.tag == nil or record.id == nil then
      return false
    end
    if index > 10000 then
      break
    end
  end
  return true
end

local image_columns = { "REPOSITORY", "TAG", "ID", "SIZE", "CREATED" }

-- Columns that give up width when the table is wider than the terminal, in
-- order, with the least width each keeps.
local shrinkable = { { 1, 12 }, { 2, 8 } }

--- Formats an image list as an aligned table fitted to width columns. A
-- repository or tag too long to fit is cut and ends in "…".
function M.format_images(images, width)
  width = width or M.width()
  local now = os.time()
  local rows = {}
  for index, record in ipairs(images) do
    rows[index] = {
      tostring(record.repository), tostring(record.tag), format.short_id(record.id),
      format.size(record.size), format.age(record.created, now),
    }
  end

  local widths = {}
  for column, title in ipairs(image_columns) do
    widths[column] = display_width(title)
    for _, row in ipairs(rows) do
      widths[column] = math.max(widths[column], display_width(row[column]))
    end
  end
  local gap = 3
  local total = gap * (#widths - 1)
  for _, column_width in ipairs(widths) do
    total = total + column_width
  end
  for _, rule in ipairs(shrinkable) do
    local column, minimum = rule[1], rule[2]
    if total > width and widths[column] > minimum then
      local cut = math.min(total - width, widths[column] - minimum)
      widths[column] = widths[column] - cut
      total = total - cut
    end
  end

  local lines = {}
  local function add_line(cells)
    local parts = {}
    for column, cell in ipairs(cells) do
      local text = truncate(cell, widths[column])
      parts[column] = column == #cells and text or pad(text, widths[column])
    end
    lines[#lines + 1] = table.concat(parts, string.rep(" ", gap))
  end
  add_line(image_columns)
  for _, row in ipairs(rows) do
    add_line(row)
  end
  return table.concat(lines, "\n")
end

-- Results -----------------------------------------------------------------

local function is_scalar(value)
  return type(value) ~= "table" or has_tostring(value) and not M.is_error(value)
end

--- Formats the results of a statement for the terminal, one string (without
-- the final newline). Returns nil when there is nothing to show.
function M.format_results(...)
  local count = select("#", ...)
  if count == 0 then
    return nil
  end
  local first, second = ...
  if count == 2 and first == nil and (type(second) == "string" or M.is_error(second)) then
    return "error: " .. tostring(second)
  end

  local blocks, scalars = {}, {}
  local all_scalars = true
  for index = 1, count do
    if not is_scalar((select(index, ...))) then
      all_scalars = false
    end
  end
  for index = 1, count do
    local value = select(index, ...)
    if all_scalars then
      scalars[#scalars + 1] = tostring(value)
    elseif M.is_error(value) then
      blocks[#blocks + 1] = "error: " .. value.message
    elseif M.is_image_list(value) then
      blocks[#blocks + 1] = M.format_images(value)
    else
      blocks[#blocks + 1] = is_scalar(value) and tostring(value) or M.format_value(value)
    end
  end
  if all_scalars then
    return table.concat(scalars, "\t")
  end
  return table.concat(blocks, "\n")
end

--- Prints the results of a statement to standard output.
function M.show(...)
  local text = M.format_results(...)
  if text then
    io.stdout:write(text, "\n")
    io.stdout:flush()
  end
end

-- Prompt and history ------------------------------------------------------

--- Returns the prompt: "synosh> " until the default session has logged in,
-- then "synosh USER@HOST> ".
function M.prompt()
  local syno = package.loaded["syno"]
  if type(syno) ~= "table" or type(syno.session) ~= "function" then
    return "synosh> "
  end
  local ok, info = pcall(syno.session)
  if not ok or type(info) ~= "table" or not info.logged_in or not info.url then
    return "synosh> "
  end
  local host = tostring(info.url):gsub("^%a[%w+.-]*://", ""):gsub("/.*$", "")
  return string.format("synosh %s@%s> ", tostring(info.user), host)
end

--- Returns false for a history entry that must not be saved: one that
-- mentions a password ("password" or "passwd", in any case).
function M.history_allowed(entry)
  local lower = entry:lower()
  return not (lower:find("password", 1, true) or lower:find("passwd", 1, true))
end

-- Completion --------------------------------------------------------------

local lua_keywords = {}
for word in pairs(keywords) do
  lua_keywords[#lua_keywords + 1] = word
end

-- Looks name up in value without calling any function: raw fields, then the
-- __index tables of the metatable chain. Strings use the string table.
local function lookup(value, name)
  for _ = 1, 10 do
    if type(value) == "table" then
      local found = rawget(value, name)
      if found ~= nil then
        return found
      end
    end
    local meta = getmetatable(value)
    local index = type(meta) == "table" and rawget(meta, "__index") or nil
    if type(index) ~= "table" then
      return nil
    end
    value = index
  end
  return nil
end

-- Adds the string keys of value and of its __index tables to names.
local function collect_fields(value, names)
  for _ = 1, 10 do
    if type(value) == "table" then
      for key in next, value do
        if type(key) == "string" and key:match(identifier) then
          names[key] = names[key] or lookup(value, key)
        end
      end
    end
    local meta = getmetatable(value)
    local index = type(meta) == "table" and rawget(meta, "__index") or nil
    if type(index) ~= "table" then
      return
    end
    value = index
  end
end

--- Returns the sorted completions of text, each the whole word: a global,
-- a keyword, or a field or method after a chain of names joined by "." and
-- ":" ("image.registry.l" gives "image.registry.list").
function M.complete(text, env)
  env = env or _G
  local chain, separator, partial = text:match("^(.-)([.:])([%w_]*)$")
  local names = {}
  local prefix = ""
  if chain then
    local value = env
    for name in (chain .. "."):gmatch("(.-)%.") do
      if not name:match(identifier) then
        return {}
      end
      value = lookup(value, name)
      if value == nil then
        return {}
      end
    end
    collect_fields(value, names)
    prefix = chain .. separator
  else
    partial = text:match("^[%a_][%w_]*$") or (text == "" and "" or nil)
    if not partial then
      return {}
    end
    collect_fields(env, names)
    for _, word in ipairs(lua_keywords) do
      names[word] = names[word] or true
    end
  end

  local candidates = {}
  for name, value in pairs(names) do
    local usable = separator ~= ":" or type(value) == "function"
    -- Internal names (_shutdown) and metamethods (__close) only when asked for.
    local hidden = name:sub(1, 1) == "_" and partial:sub(1, 1) ~= "_"
    if usable and not hidden and name:sub(1, #partial) == partial then
      candidates[#candidates + 1] = prefix .. name
    end
  end
  table.sort(candidates)
  return candidates
end

-- Help --------------------------------------------------------------------

-- One entry per function: the signature, the parameters with their defaults,
-- what it returns and an example. Written from docs/api.md.
M.topics = {
  ["image.list"] = {
    signature = "image.list{offset = 0, limit = -1, show_dsm = false}",
    summary = "Lists the images on the NAS.",
    params = {
      "offset    integer >= 0, default 0: first image to return",
      "limit     integer, default -1 (all): how many images to return",
      "show_dsm  boolean, default false: include DSM's own images",
    },
    returns = "images, total (records with id, repository, tag, size in bytes, created in unix seconds, is_ddsm)",
    example = "image.list{limit = 10}",
  },
  ["image.get"] = {
    signature = "image.get(repository, tag) or image.get(reference)",
    summary = "Returns one image record.",
    params = {
      "repository, tag  strings, or one docker reference such as \"nginx:1.25\"; no tag means latest",
    },
    returns = "image",
    example = 'image.get("ghcr.io/home-assistant/home-assistant:2024.6")',
  },
  ["image.pull"] = {
    signature = "image.pull(repository, tag, {registry = url}) or image.pull(reference, options)",
    summary = "Starts pulling an image; sends nothing under dry run.",
    params = {
      "repository, tag  strings, or one docker reference",
      "registry         string, default the NAS's default registry: registry URL",
    },
    returns = 'task id ("dry-run" under dry run)',
    example = 'image.pull("alpine:3.20")',
  },
  ["image.delete"] = {
    signature = "image.delete(repository, tag, {force = false}) or image.delete(reference, options)",
    summary = "Deletes an image; sends nothing under dry run.",
    params = {
      "repository, tag  strings, a docker reference, or an image record from image.list",
      "force            boolean, default false: delete even when a container uses it",
    },
    returns = "true",
    example = 'image.delete("nginx:1.25.3")',
  },
  ["image.delete_many"] = {
    signature = "image.delete_many(images, {batch_size = 20})",
    summary = "Deletes many images, in batches where the NAS takes them; a failure does not stop "
      .. "the others. Sends nothing under dry run.",
    params = {
      "images      list of image records from image.list, or references",
      "batch_size  integer >= 1, default 20: images per delete call (Container Manager only)",
    },
    returns = "one result per image: {image =, ok = true} or {image =, ok = false, error =}",
    example = "image.delete_many(old_images, {batch_size = 10})",
  },
  ["image.pull_status"] = {
    signature = "image.pull_status(task_id)",
    summary = "Returns the progress of a pull (Container Manager only).",
    params = { "task_id  string: what image.pull returned" },
    returns = "{description, downloaded (bytes), finished, repository, tag}",
    example = 'image.pull_status(image.pull("alpine:3.20")).downloaded',
  },
  ["image.wait"] = {
    signature = "image.wait(task_id, {timeout = 600, interval = 2})",
    summary = "Waits until a pull or upgrade finishes (Container Manager only).",
    params = {
      "task_id   string: what image.pull or image.upgrade returned",
      "timeout   number, default 600: seconds before it raises kind timeout",
      "interval  number, default 2: seconds between status requests",
    },
    returns = "the last status, with finished = true",
    example = 'image.wait(image.pull("alpine:3.20"))',
  },
  ["image.upgrade"] = {
    signature = "image.upgrade(repository)",
    summary = "Starts updating the tags of a repository to newer builds (Container Manager only); "
      .. "sends nothing under dry run.",
    params = { "repository  string, such as \"nginx\"" },
    returns = 'task id for image.upgrade_status and image.wait ("dry-run" under dry run)',
    example = 'image.wait(image.upgrade("nginx"))',
  },
  ["image.upgrade_status"] = {
    signature = "image.upgrade_status(task_id)",
    summary = "Returns the progress of an upgrade (Container Manager only).",
    params = { "task_id  string: what image.upgrade returned" },
    returns = "{current, total, finished, state, image}",
    example = "image.upgrade_status(task).finished",
  },
  ["image.prune"] = {
    signature = "image.prune()",
    summary = "Lets the NAS remove the images it counts as unused (Container Manager only); "
      .. "sends nothing under dry run.",
    params = {},
    returns = "{ImagesDeleted = {...}, SpaceReclaimed = bytes}",
    example = "image.prune().SpaceReclaimed",
  },
  ["image.search"] = {
    signature = "image.search(query, {registry = url})",
    summary = "Searches a registry for images.",
    params = {
      "query     non-empty string",
      "registry  string, default the NAS's default registry: registry URL",
    },
    returns = "results",
    example = 'image.search("alpine")',
  },
  ["image.registry.list"] = {
    signature = "image.registry.list()",
    summary = "Lists the registries the NAS knows.",
    params = {},
    returns = "registries",
    example = "image.registry.list()",
  },
  ["image.registry.add"] = {
    signature = "image.registry.add{name =, url =, username =, password =}",
    summary = "Adds a registry; sends nothing under dry run.",
    params = {
      "name      non-empty string, required",
      "url       non-empty string, required",
      "username  string, optional",
      "password  string, optional",
    },
    returns = "true",
    example = 'image.registry.add{name = "team", url = "https://registry.lan:5000"}',
  },
  ["image.registry.use"] = {
    signature = "image.registry.use(name)",
    summary = "Makes a registry the active one, which pull and search use (Container Manager only).",
    params = { "name  string: a name from image.registry.list" },
    returns = "true",
    example = 'image.registry.use("Docker Hub")',
  },
  ["image.registry.remove"] = {
    signature = "image.registry.remove(name)",
    summary = "Removes a registry (Container Manager only); sends nothing under dry run.",
    params = { "name  string: a name from image.registry.list" },
    returns = "true",
    example = 'image.registry.remove("team")',
  },
  ["image.registry.tags"] = {
    signature = "image.registry.tags(repository)",
    summary = "Lists the tags of a repository in the active registry (Container Manager only).",
    params = { "repository  string, such as \"nginx\"" },
    returns = "list of tag strings",
    example = 'image.registry.tags("nginx")',
  },
  ["syno.container.list"] = {
    signature = "syno.container.list()",
    summary = "Lists every container, running or stopped (Container Manager only).",
    params = {},
    returns = "containers, total (records with name, image, status)",
    example = "for _, c in ipairs(syno.container.list()) do print(c.name, c.image) end",
  },
  ["syno.connect"] = {
    signature = "syno.connect{url =, user =, password =, password_file =, otp =, cacert =, pinned_pubkey =, "
      .. "insecure =, timeout =, dry_run =, dialect =, remember_device =}",
    summary = "Opens a session and logs in at once; options not given come from the command line, "
      .. "the environment and the profile.",
    params = {
      "url            string: the NAS, such as https://nas.local:5001",
      "user           string: the DSM account",
      "password       string: the password (better password_file: a script is easy to share)",
      "password_file  string: file whose first line is the password",
      "otp            string: two-step verification code",
      "cacert         string: CA certificate file (PEM)",
      "pinned_pubkey  string: \"sha256//BASE64\", accept only the NAS with this public key",
      "insecure       boolean, default false: do not verify the certificate",
      "timeout        number, default 60: maximum seconds of one request",
      "dry_run        boolean, default false: send no delete, pull or registry change",
      "dialect        string, default \"auto\": \"document\" or \"container-manager\" skips detection",
      "remember_device  string: with otp, store the device token under this name",
    },
    returns = "a connection: nas.image.list(), nas:call(...), nas:info(), nas:close()",
    example = 'local nas = syno.connect{url = "https://nas.local:5001", user = "admin", password_file = "nas.pass"}',
  },
  ["syno.call"] = {
    signature = "syno.call(api, method, version, params, {http = \"GET\"})",
    summary = "Calls any DSM API on the default session.",
    params = {
      "api, method  strings, such as \"SYNO.Docker.Image\", \"list\"",
      "version      integer",
      "params       table, sent in name order; booleans as true/false, tables as JSON",
      "http         \"GET\" (default) or \"POST\"; a POST is not sent under dry run",
    },
    returns = "the data field of the DSM reply",
    example = 'syno.call("SYNO.Docker.Image", "list", 1, {offset = 0, limit = 5})',
  },
  ["syno.session"] = {
    signature = "syno.session()",
    summary = "Returns facts about the default session.",
    params = {},
    returns = "{url, user, dialect (\"document\", \"container-manager\", or nil before the first call), "
      .. "logged_in, dry_run}",
    example = "syno.session().dialect",
  },
  ["syno.log.info"] = {
    signature = "syno.log.info(text), syno.log.warn(text), syno.log.error(text)",
    summary = "Prints a message to stderr; info lines are dropped under --quiet.",
    params = { "text  any value, converted with tostring" },
    returns = "nothing",
    example = 'syno.log.warn("disk almost full")',
  },
  ["image.offers"] = {
    signature = "image.offers(name)",
    summary = "Tells whether this NAS offers a function that only some dialects have.",
    params = { "name  \"pull_status\", \"wait\", \"prune\", \"upgrade\" or \"delete_many\"" },
    returns = "boolean",
    example = 'if image.offers("prune") then image.prune() end',
  },
  ["image.dry_run"] = {
    signature = "image.dry_run()",
    summary = "Tells whether this session sends no write call (--dry-run or dry_run = true).",
    params = {},
    returns = "boolean",
    example = "print(image.dry_run())",
  },
  ["syno.default"] = {
    signature = "syno.default()",
    summary = "Returns the default connection, the one image and syno.call use; it logs in on first use.",
    params = {},
    returns = "a connection, as syno.connect returns",
    example = "print(syno.default():info().dialect)",
  },
  ["syno.lock"] = {
    signature = "syno.lock(path)",
    summary = "Takes an exclusive lock on a file for the rest of the run; --lock FILE does the same.",
    params = { "path  string: the lock file, created when missing" },
    returns = "the lock, with lock:release(); raises kind \"locked\" (exit status 5) when another run holds it",
    example = 'syno.lock("/run/lock/synosh-cleanup.lock")',
  },
  ["syno.notify"] = {
    signature = "syno.notify(report, {command = CMD})",
    summary = "Hands a report to --notify-command at the end of the run, or to CMD at once.",
    params = {
      "report   a plan or report from syno.policy",
      "command  string, optional: a command for sh -c that gets the JSON on standard input now",
    },
    returns = "true",
    example = "syno.notify(policy.cleanup{keep = 3})",
  },
  ["syno.log.warn"] = {
    signature = "syno.log.warn(text)",
    summary = "Prints \"synosh: warning: text\" on standard error, even under --quiet.",
    params = { "text  string" },
    returns = "nothing",
    example = 'syno.log.warn("disk nearly full")',
  },
  ["syno.log.error"] = {
    signature = "syno.log.error(text)",
    summary = "Prints \"synosh: error: text\" on standard error; the script goes on.",
    params = { "text  string" },
    returns = "nothing",
    example = 'syno.log.error("cannot read the exclude list")',
  },
  ["syno.log.enabled"] = {
    signature = "syno.log.enabled(level)",
    summary = "Tells whether lines of a level are printed (info is off under --quiet, debug needs --verbose).",
    params = { "level  \"debug\", \"info\", \"warning\" or \"error\"" },
    returns = "boolean",
    example = 'if syno.log.enabled("debug") then syno.log.info(json.encode(image.get("nginx"))) end',
  },
  ["syno.container.offered"] = {
    signature = "syno.container.offered()",
    summary = "Tells whether this NAS lists its containers (Container Manager does).",
    params = {},
    returns = "boolean",
    example = "if syno.container.offered() then print(#syno.container.list()) end",
  },
  ["syno.errors.new"] = {
    signature = "syno.errors.new{kind =, message =, code =, api =, method =}",
    summary = "Creates an error object, for a snippet that raises errors as synosh does.",
    params = { "kind, message  strings, required; code, api and method optional" },
    returns = "the error object; error(err, 0) raises it",
    example = 'error(syno.errors.new{kind = "usage", message = "budget must be > 0"}, 0)',
  },
  ["syno.errors.raise"] = {
    signature = "syno.errors.raise{kind =, message =, ...}",
    summary = "Raises a new error object (syno.errors.new, then error).",
    params = { "the fields of syno.errors.new" },
    returns = "does not return",
    example = 'syno.errors.raise{kind = "usage", message = "give a budget in bytes"}',
  },
  ["syno.errors.describe"] = {
    signature = "syno.errors.describe(code, during_login)",
    summary = "Returns the meaning of a DSM error code.",
    params = { "code  integer", "during_login  boolean: read the code as a login error" },
    returns = "string",
    example = "print(syno.errors.describe(1002))",
  },
  ["syno.errors.kind_of"] = {
    signature = "syno.errors.kind_of(code, during_login)",
    summary = "Returns the error kind synosh gives a DSM error code.",
    params = { "code  integer", "during_login  boolean: read the code as a login error" },
    returns = "string, such as \"auth\" or \"not_found\"",
    example = "print(syno.errors.kind_of(400, true))",
  },
  ["syno.errors.json_type"] = {
    signature = "syno.errors.json_type(value)",
    summary = "Names the JSON type of a decoded value, for messages about malformed data.",
    params = { "value  any value from cjson" },
    returns = "string, such as \"a number\" or \"null\"",
    example = "print(syno.errors.json_type(json.decode(\"[1]\")))",
  },
  ["syno.errors.is"] = {
    signature = "syno.errors.is(value)",
    summary = "Tells whether value is a synosh error object (fields kind, code, message, ...).",
    params = { "value  any value, such as the error from pcall" },
    returns = "boolean",
    example = "local ok, err = pcall(image.get, \"nginx:9\") print(syno.errors.is(err) and err.kind)",
  },
}

M.modules = {
  { "image", "the image functions on the default session (require \"syno.image\")" },
  { "image.registry", "the registries the NAS pulls from" },
  { "syno", "sessions, call, dry run, logging (require \"syno\")" },
  { "syno.container", "the containers of the NAS (Container Manager only)" },
  { "json", "lua-cjson: json.encode(value), json.decode(text)" },
}

-- Finds the help topic of a function value by walking the globals named in
-- the topics ("image.list" is _G.image.list).
local function topic_of_function(fn, env)
  for name in pairs(M.topics) do
    local value = env
    for part in name:gmatch("[^.]+") do
      value = type(value) == "table" and lookup(value, part) or nil
    end
    if value == fn then
      return name
    end
  end
  return nil
end

local function format_topic(name)
  local topic = M.topics[name]
  local lines = { topic.signature, "  " .. topic.summary }
  if #topic.params > 0 then
    lines[#lines + 1] = "parameters:"
    for _, param in ipairs(topic.params) do
      lines[#lines + 1] = "  " .. param
    end
  end
  lines[#lines + 1] = "returns: " .. topic.returns
  lines[#lines + 1] = "example: " .. topic.example
  return table.concat(lines, "\n")
end

--- Returns the help text: the overview without an argument, else the help
-- of a function value or of a name such as "image.list".
function M.help_text(subject, env)
  env = env or _G
  if subject == nil then
    local lines = { "modules:" }
    for _, module in ipairs(M.modules) do
      lines[#lines + 1] = string.format("  %-15s %s", module[1], module[2])
    end
    lines[#lines + 1] = "functions:"
    local names = sorted_keys(M.topics)
    for _, name in ipairs(names) do
      lines[#lines + 1] = "  " .. M.topics[name].signature
    end
    lines[#lines + 1] = 'help(image.list) or help "image.list" shows one function; Tab completes names.'
    return table.concat(lines, "\n")
  end
  local name = subject
  if type(subject) == "function" then
    name = topic_of_function(subject, env)
  end
  if type(name) == "string" and M.topics[name] then
    return format_topic(name)
  end
  return string.format("no help for %s; help() lists the functions", tostring(subject))
end

--- help([function or name]): prints the help text.
function M.help(subject)
  io.stdout:write(M.help_text(subject), "\n")
end

-- Returns the edit distance of a and b (insertions, deletions, changes and
-- swaps of two neighbours), or limit + 1 once it exceeds limit.
local function distance(a, b, limit)
  if math.abs(#a - #b) > limit then
    return limit + 1
  end
  local previous, before_previous = {}, nil
  for j = 0, #b do
    previous[j] = j
  end
  for i = 1, #a do
    local current = { [0] = i }
    local row_min = i
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local value = math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
      if before_previous and i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        value = math.min(value, before_previous[j - 2] + 1)
      end
      current[j] = value
      row_min = math.min(row_min, value)
    end
    if row_min > limit then
      return limit + 1
    end
    before_previous, previous = previous, current
  end
  return previous[#b]
end

-- Returns the names in the shell that a misspelled name most likely meant:
-- globals for a global, fields of the globals' tables (two levels deep, as
-- "image.registry.list") for a field or method. With prefix (the names
-- before the misspelled one in the statement, as "image.registry"), only
-- the fields of that table count.
local function close_names(name, is_global, env, prefix)
  local limit = #name <= 4 and 1 or 2
  local candidates = {}
  if is_global then
    local names = {}
    collect_fields(env, names)
    for key in pairs(names) do
      candidates[#candidates + 1] = key
    end
  else
    local seen = {}
    local function visit(prefix, value, depth)
      if seen[value] or depth > 2 then
        return
      end
      seen[value] = true
      local fields = {}
      collect_fields(value, fields)
      for key, field in pairs(fields) do
        candidates[#candidates + 1] = prefix .. "." .. key
        if type(field) == "table" then
          visit(prefix .. "." .. key, field, depth + 1)
        end
      end
    end
    local prefix_value = prefix and env
    for part in (prefix or ""):gmatch("[^.:]+") do
      prefix_value = type(prefix_value) == "table" and lookup(prefix_value, part) or nil
    end
    if type(prefix_value) == "table" then
      visit(prefix, prefix_value, 2)
    else
      for _, global in ipairs { "image", "syno" } do
        if type(env[global]) == "table" then
          visit(global, env[global], 1)
        end
      end
    end
  end
  local best, best_distance = {}, limit + 1
  for _, candidate in ipairs(candidates) do
    local last = candidate:match("([%w_]+)$")
    local candidate_distance = distance(name, last, limit)
    if candidate_distance < best_distance then
      best, best_distance = { candidate }, candidate_distance
    elseif candidate_distance == best_distance and candidate_distance <= limit then
      best[#best + 1] = candidate
    end
  end
  table.sort(best)
  return best
end

--- Returns message, the error of statement, with a hint when it names a
-- nil global or field that is one typo away from a name in the shell:
-- "attempt to call a nil value (field 'lst')" gets "; did you mean
-- image.list?".
function M.explain(message, env, statement)
  env = env or _G
  if type(message) ~= "string" then
    return message
  end
  local scope, name = message:match("attempt to %a+ a nil value %((%a+) '([%w_]+)'%)")
  if not name or #name < 3 or not (scope == "global" or scope == "field" or scope == "method") then
    return message
  end
  local prefix = type(statement) == "string"
    and statement:match("([%a_][%w_.:]*)[.:]" .. name .. "%f[^%w_]") or nil
  local names = close_names(name, scope == "global", env, prefix)
  if #names == 0 or #names > 3 then
    return message
  end
  return string.format("%s; did you mean %s?", message, table.concat(names, " or "))
end

--- Sets the globals of the shell: help, json, syno and image. Raises when
-- syno cannot be loaded (such as an invalid profile); help and json are set
-- before that.
function M.install_globals(env)
  env = env or _G
  env.help = M.help
  env.json = require "cjson"
  env.syno = require "syno"
  env.image = require "syno.image"
end

return M
