#!/usr/bin/env synosh
-- Pulls images onto the NAS: references given as arguments or listed in a
-- file, one per line. With --wait, follows each pull to its end and reports
-- pulled, up to date or failed.

local syno = require "syno"
local args = require "syno.args"
local policy = require "syno.policy"

local usage_text = [[
usage: synosh [connection options] scripts/pull.lua [options] [REFERENCE...]

Pulls each REFERENCE (such as nginx:1.27 or ghcr.io/owner/app:v2) onto the NAS.

Options:
  --file FILE         also pull the references in FILE, one per line
                      (blank lines and # comments are skipped; - is stdin)
  --wait              follow each pull to its end: pulled, up to date or failed
  --timeout SECONDS   with --wait, give up on one image after SECONDS (default 600)
  --settle SECONDS    with --wait on a NAS without pull status: an image that
                      was there and has not changed after SECONDS counts as up
                      to date (default 30)
  --registry URL      pull from this registry
  --dry-run           check the references and print what would be pulled
  --json              print the report as JSON on standard output
  -h, --help          show this help

Every reference is checked before the first pull; one invalid reference stops
the run with status 2 and pulls nothing.

Exit status: 0 when every pull succeeded, 1 when any failed, 2 for a usage
error, 4 when the NAS stopped answering (the rest is not attempted); see
synosh --help for the others.]]

local spec = {
  program = "pull.lua",
  usage = usage_text,
  options = {
    { "--file", value = "FILE", repeated = true },
    { "--wait" },
    { "--timeout", value = "SECONDS", check = args.seconds() },
    { "--settle", value = "SECONDS", check = args.seconds() },
    { "--registry", value = "URL" },
    { "--dry-run" },
    { "--json" },
  },
}

local options, references = args.parse({ ... }, spec)
if (options.timeout or options.settle) and not options.wait then
  args.fail(spec, "--timeout and --settle apply only with --wait")
end

for _, path in ipairs(options.file or {}) do
  args.read_list(spec, "--file", path, references)
end
if #references == 0 then
  args.fail(spec, "no image to pull; give references as arguments or --file FILE")
end

-- Check every reference before connecting.
local reference = require "syno.reference"
for _, text in ipairs(references) do
  if text:match("^%a+://") then
    args.fail(spec, string.format("invalid reference %q: a reference has no scheme; write %s",
      text, text:gsub("^%a+://", "")))
  end
  local ok, message = reference.parse(text)
  if not ok then
    args.fail(spec, message)
  end
end

local dry_run = options.dry_run or syno.dry_run
local nas = syno.connect { dry_run = dry_run or nil }
local report = policy.pull {
  images = references, wait = options.wait or false, timeout = options.timeout,
  settle = options.settle, registry = options.registry, image = nas.image, dry_run = dry_run or false,
  on_result = function(item)
    if item.result == "failed" then
      syno.log.error(string.format("cannot pull %s: %s", item.reference, tostring(item.error)))
    elseif not options.json then
      syno.log.info(string.format("%s: %s%s", item.reference, item.result,
        item.detail and (" (" .. item.detail .. ")") or ""))
    end
  end,
}
syno.notify(report)

if options.json then
  print(policy.report(report, { format = "json", indent = "  " }))
elseif not syno.quiet then
  print(require("syno.report").summary_line(report))
end
nas:close()
if report.unreachable then
  syno.log.error(string.format("stopped: %s", tostring(report.unreachable)))
  os.exit(4)
end
if report.summary.failed > 0 or report.interrupted then
  os.exit(1)
end
