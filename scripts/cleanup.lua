#!/usr/bin/env synosh
-- Deletes the images a cleanup policy selects: older tags beyond the newest N
-- per repository, images older than a given age, dangling images; never DSM's
-- own images, images a container uses, or what an exclude pattern names.
-- Prints the plan (every image with its decision and the reason), then
-- deletes what it selects, unless --dry-run or --plan is given.

local syno = require "syno"
local args = require "syno.args"
local policy = require "syno.policy"
local report_format = require "syno.report"

local usage_text = [[
usage: synosh [connection options] scripts/cleanup.lua [options]

Rules (an image is deleted only when every rule selects it; --keep 3 applies
unless another --keep is given, and --keep 0 turns it off):
  --keep N             keep the N newest images of each repository (default 3)
  --older-than AGE     delete only images created more than AGE ago, such as
                       30d, 12h, 2w or 1w3d (units s, min, h, d, w)
  --unknown-age WHAT   images without a creation time: keep (default) or delete
  --include PATTERN    consider only images whose repository:tag matches PATTERN
                       (repeatable)
  --exclude PATTERN    never delete images that match PATTERN (repeatable)
  --exclude-file FILE  read exclude patterns from FILE, one per line (# comments)
  --no-dangling        keep dangling (untagged) images; by default they are
                       deleted when the age rule allows
  --show-dsm           consider DSM's own images too (never by default)
  --force              ask the NAS to force each delete, which deletes images a
                       container uses where the NAS has no container list for
                       synosh to protect them (the document dialect)

Output:
  --dry-run            print the plan and the report, send no delete
  --plan               print the plan only, send no delete
  --json               print the plan or the report as JSON on standard output
  -h, --help           show this help

Patterns are globs matched against the whole repository:tag: * matches any
characters, ? one character, [a-z] a set. A pattern without a tag matches
every tag ("redis" is "redis:*"); "lscr.io/*" matches everything from that
registry. An invalid pattern stops the run before any delete.

Exit status: 0 when every planned delete succeeded (an image the NAS refuses
because a container uses it counts as kept), 1 when any failed, 2 for a usage
error, 4 when the NAS stopped answering during the run (the rest is not
attempted); see synosh --help for the others.]]

local spec = {
  program = "cleanup.lua",
  usage = usage_text,
  options = {
    { "--keep", value = "N", check = args.integer(0) },
    { "--older-than", value = "AGE", check = function(text, name)
      local seconds, message = policy.parse_duration(text)
      if not seconds then
        return nil, name .. ": " .. message
      end
      return text
    end },
    { "--unknown-age", value = "keep|delete", check = args.one_of("keep", "delete") },
    { "--include", value = "PATTERN", repeated = true },
    { "--exclude", value = "PATTERN", repeated = true },
    { "--exclude-file", value = "FILE", repeated = true },
    { "--no-dangling" }, { "--show-dsm" }, { "--force" },
    { "--dry-run" }, { "--plan" }, { "--json" },
  },
}

local options, rest = args.parse({ ... }, spec)
if #rest > 0 then
  args.fail(spec, "unexpected argument " .. rest[1])
end

local exclude = options.exclude or {}
for _, path in ipairs(options.exclude_file or {}) do
  args.read_list(spec, "--exclude-file", path, exclude)
end

local rules = {
  keep = options.keep or 3,
  older_than = options.older_than,
  unknown_age = options.unknown_age,
  include = options.include,
  exclude = #exclude > 0 and exclude or nil,
  dangling = not options.no_dangling,
  show_dsm = options.show_dsm or false,
  force = options.force or false,
}
-- Check every rule and pattern before connecting, so a typo costs no login.
local ok, err = pcall(policy.check_rules, rules)
if not ok then
  args.fail(spec, tostring(err))
end

local plan_only = options.plan
local dry_run = options.dry_run or syno.dry_run
local nas = syno.connect { dry_run = dry_run or plan_only or nil }
local printing = not options.json and not syno.quiet

local cleanup_options = {
  image = nas.image,
  containers = nas.container,
  dry_run = dry_run or plan_only or false,
  on_plan = function(plan)
    for _, warning in ipairs(plan.warnings) do
      syno.log.warn(warning)
    end
    if printing and not plan_only then
      print(string.format("cleanup plan for %s%s", nas:info().url,
        dry_run and " (dry run: nothing is deleted)" or ""))
      print(report_format.format(plan))
      io.stdout:flush()
    end
  end,
  on_deleted = function(entry)
    if not dry_run and not plan_only then
      syno.log.info(string.format("deleted %s: %s", entry.name, entry.reason))
    end
  end,
  on_kept = function(entry)
    syno.log.info(string.format("kept %s: %s", entry.name, entry.reason))
  end,
  on_failed = function(entry, failure)
    local text = tostring(failure)
    if not text:find(entry.name, 1, true) then
      text = string.format("cannot delete %s: %s", entry.name, text)
    end
    syno.log.error(text)
  end,
}
for key, value in pairs(rules) do
  cleanup_options[key] = value
end

local report = policy.cleanup(cleanup_options)
local result = plan_only and report.plan or report
syno.notify(result)

if options.json then
  print(policy.report(result, { format = "json", indent = "  " }))
elseif plan_only and not syno.quiet then
  print(policy.report(result))
elseif printing then
  print(report_format.summary_line(report))
end
nas:close()
if report.unreachable then
  syno.log.error(string.format("stopped: %s", tostring(report.unreachable)))
  os.exit(4)
end
if #report.failed > 0 or report.interrupted then
  os.exit(1)
end
