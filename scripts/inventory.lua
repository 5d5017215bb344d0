#!/usr/bin/env synosh
-- Lists the images on the NAS per repository: tags, sizes, ages, totals and
-- dangling images.
--

local image = require "syno.image"
local args = require "syno.args"
local format = require "syno.format"
local policy = require "syno.policy"
local report = require "syno.report"

local usage_text = [[
usage: synosh [connection options] scripts/inventory.lua [options]

Lists the images on the NAS per repository, with sizes, ages and totals. An
image that several tags name counts once in the sizes, as the disk holds it once.

Options:
  --all        include DSM's own images (is_ddsm)
  --json       print the images as JSON on standard output
  -h, --help   show this help

Exit status: 0 on success; see synosh --help for the others.]]

local spec = {
  program = "inventory.lua",
  usage = usage_text,
  options = { { "--all" }, { "--json" } },
}
local options, rest = args.parse({ ... }, spec)
if #rest > 0 then
  args.fail(spec, "unexpected argument " .. rest[1])
end
local show_dsm = options.all or false

local images, total = image.list { show_dsm = show_dsm }

-- Sums the sizes of images, counting an image that several tags name once,
-- as the disk holds it once.
local function disk_size(list)
  local bytes, seen = 0, {}
  for index, item in ipairs(list) do
    local id = policy.normal_id(item.id) or index
    if not seen[id] then
      seen[id] = true
      bytes = bytes + (tonumber(item.size) or 0)
    end
  end
  return bytes
end

if options.json then
  local list, dangling_count, names = report.array(), 0, {}
  local repository_count = 0
  for _, item in ipairs(images) do
    local dangling = policy.is_dangling(item)
    list[#list + 1] = {
      id = item.id, repository = item.repository, tag = item.tag, size = item.size,
      created = item.created, is_ddsm = item.is_ddsm or false, dangling = dangling,
      name = format.image_name(item),
    }
    if dangling then
      dangling_count = dangling_count + 1
    elseif not names[item.repository] then
      names[item.repository] = true
      repository_count = repository_count + 1
    end
  end
  print(report.json({
    kind = "inventory", total = total, images = list,
    summary = { images = #images, repositories = repository_count, dangling = dangling_count,
                bytes = disk_size(images) },
  }, { indent = "  " }))
  return
end
local now = os.time()

local repositories, names, dangling = {}, {}, {}
for _, item in ipairs(images) do
  if policy.is_dangling(item) then
    dangling[#dangling + 1] = item
  else
    local group = repositories[item.repository]
    if not group then
      group = {}
      repositories[item.repository] = group
      names[#names + 1] = item.repository
    end
    group[#group + 1] = item
  end
end
table.sort(names)

for _, name in ipairs(names) do
  local group = repositories[name]
  -- Newest first, and tags of one age in the order cleanup.lua ranks them.
  table.sort(group, function(a, b)
    local a_created, b_created = tonumber(a.created) or 0, tonumber(b.created) or 0
    if a_created ~= b_created then
      return a_created > b_created
    end
    return policy.tag_before(tostring(a.tag), tostring(b.tag))
  end)
  local size = disk_size(group)
  print(string.format("%s  (%d tag%s, %s)", name, #group, #group == 1 and "" or "s", format.size(size)))
  for _, item in ipairs(group) do
    print(string.format("  %-28s %10s  %-16s %s%s", item.tag, format.size(item.size),
      format.age(item.created, now), format.short_id(item.id), item.is_ddsm and "  DSM" or ""))
  end
end

if #dangling > 0 then
  print(string.format("dangling images  (%d)", #dangling))
  for _, item in ipairs(dangling) do
    print(string.format("  %-28s %10s  %s", format.short_id(item.id), format.size(item.size),
      format.age(item.created, now)))
  end
end

print(string.format("total: %d images in %d repositories, %d dangling, %s on disk (the NAS reports %s)",
  #images, #names, #dangling, format.size(disk_size(images)), tostring(total)))
