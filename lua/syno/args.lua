--- Option parsing for scripts: "--name VALUE", "--name=VALUE", flags and
-- repeatable options, with the one-line usage errors and exit status 2 that
-- synosh's own options have.
--
--   local args = require "syno.args"
--   local options, rest = args.parse({...}, {
--     program = "cleanup.lua", usage = usage_text,
--     options = {
--       { "--keep", value = "N", check = args.integer(0) },
--       { "--exclude", value = "PATTERN", repeated = true },
--       { "--dry-run" },
--     },
--   })
--   -- options.keep, options.exclude (a list), options.dry_run (true or nil)

local errors = require "syno.errors"

local M = {}

--- Raises a usage error "program: message (see --help)", which ends the run
-- with status 2 (and reaches --notify-command).
local function fail(spec, message)
  errors.raise { kind = "usage", message = string.format("%s: %s (see --help)", spec.program, message) }
end
M.fail = fail

-- synosh's own options, which belong before the script on the command line.
local host_short_options = { ["-q"] = true, ["-v"] = true, ["-i"] = true, ["-e"] = true, ["-l"] = true }
local host_options = {
  ["--url"] = true, ["--user"] = true, ["--password-file"] = true, ["--otp"] = true,
  ["--cacert"] = true, ["--pinned-pubkey"] = true, ["--insecure"] = true, ["--timeout"] = true,
  ["--profile"] = true, ["--quiet"] = true, ["--verbose"] = true, ["--lock"] = true,
  ["--notify-command"] = true, ["--sandbox"] = true, ["--dialect"] = true,
  ["--remember-device"] = true,
}

local function key_of(name)
  return (name:gsub("^%-%-", ""):gsub("%-", "_"))
end

--- Returns a check for whole numbers >= minimum.
function M.integer(minimum)
  return function(text, name)
    if not text:match("^%d+$") or #text > 9 then
      return nil, string.format("invalid %s %q: give a whole number >= %d", name, text, minimum)
    end
    local value = math.tointeger(tonumber(text))
    if value < minimum then
      return nil, string.format("invalid %s %q: give a whole number >= %d", name, text, minimum)
    end
    return value
  end
end

--- Returns a check for a number of seconds > 0.
function M.seconds()
  return function(text, name)
    local value = tonumber(text)
    if not value or value <= 0 or value ~= value or value == math.huge then
      return nil, string.format("invalid %s %q: give a number of seconds greater than 0", name, text)
    end
    return value
  end
end

--- Returns a check that accepts one of the given words.
function M.one_of(...)
  local words = { ... }
  return function(text, name)
    for _, word in ipairs(words) do
      if text == word then
        return text
      end
    end
    return nil, string.format("invalid %s %q: give %s", name, text, table.concat(words, " or "))
  end
end

--- Appends the entries of a list file to into: one per line, with blank
-- lines and "#" comments skipped. path "-" reads standard input. A file that
-- cannot be read is a usage error that names option.
function M.read_list(spec, option, path, into)
  local file, message = io.stdin, nil
  if path ~= "-" then
    file, message = io.open(path, "r")
    if not file then
      fail(spec, string.format("cannot read %s: %s", option, message))
    end
  end
  local text, read_error = file:read("a")
  if file ~= io.stdin then
    file:close()
  end
  if not text then
    fail(spec, string.format("cannot read %s %s: %s", option, path, tostring(read_error)))
  end
  for line in text:gmatch("[^\n]+") do
    local entry = line:gsub("#.*$", ""):match("^%s*(.-)%s*$")
    if entry ~= "" then
      into[#into + 1] = entry
    end
  end
  return into
end

--- Parses list (the script's arguments) by spec. Returns the options (keys
-- are option names without "--" and with "_" for "-") and the other
-- arguments. -h and --help print spec.usage and exit 0.
function M.parse(list, spec)
  local by_name = {}
  for _, option in ipairs(spec.options) do
    by_name[option[1]] = option
  end
  local options, rest = {}, {}
  local i = 1
  while i <= #list do
    local arg = list[i]
    if arg == "-h" or arg == "--help" then
      print(spec.usage)
      os.exit(0)
    elseif arg == "--" then
      for j = i + 1, #list do
        rest[#rest + 1] = list[j]
      end
      break
    elseif arg:sub(1, 2) == "--" then
      local name, inline = arg:match("^(%-%-[^=]+)=(.*)$")
      name = name or arg
      local option = by_name[name]
      if not option and host_options[name] then
        fail(spec, string.format("unknown option %s: it is an option of synosh itself, so give it "
          .. "before the script: synosh %s ... %s", name, name, spec.program))
      elseif not option then
        fail(spec, "unknown option " .. name)
      end
      local key = key_of(name)
      if option.value then
        local value = inline
        if value == nil then
          i = i + 1
          value = list[i]
        end
        if value == nil or value == "" or (inline == nil and value:sub(1, 2) == "--") then
          fail(spec, string.format("%s needs a value (%s)", name, option.value))
        end
        if option.check then
          local checked, message = option.check(value, name)
          if checked == nil then
            fail(spec, message)
          end
          value = checked
        end
        if option.repeated then
          options[key] = options[key] or {}
          table.insert(options[key], value)
        elseif options[key] ~= nil and options[key] ~= value then
          -- Last one wins is the usual rule, but for a cleanup policy
          -- "--keep 3 --keep 1" more likely is a mistake than an override.
          fail(spec, string.format("%s is given twice, as %s and %s: give it once", name,
            tostring(options[key]), tostring(value)))
        else
          options[key] = value
        end
      else
        if inline ~= nil then
          fail(spec, string.format("%s takes no value", name))
        end
        options[key] = true
      end
    elseif host_short_options[arg] then
      fail(spec, string.format("unknown option %s: it is an option of synosh itself, so give it "
        .. "before the script: synosh %s ... %s", arg, arg, spec.program))
    elseif arg:sub(1, 1) == "-" and arg ~= "-" then
      fail(spec, "unknown option " .. arg)
    else
      rest[#rest + 1] = arg
    end
    i = i + 1
  end
  return options, rest
end

return M
