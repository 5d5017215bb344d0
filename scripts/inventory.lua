#!/usr/bin/env synosh
-- Lists the images on the NAS per repository: tags, sizes, ages, totals and
-- dangling images.
--
-- usage: synosh [connection options] scripts/inventory.lua [--all]
--   --all   include DSM's own images (is_ddsm)

local image = require "syno.image"
local format = require "syno.format"
local policy = require "syno.policy"

local show_dsm = false
for _, option in ipairs { ... } do
  if option == "--all" then
    show_dsm = true
  elseif option == "-h" or option == "--help" then
    print("usage: synosh [connection options] scripts/inventory.lua [--all]")
    print("  --all   include DSM's own images (is_ddsm)")
    os.exit(0)
  else
    io.stderr:write(string.format("inventory.lua: unknown option %s (see --help)\n", option))
    os.exit(2)
  end
end

local images, total = image.list { show_dsm = show_dsm }
local now = os.time()

local repositories, names, dangling = {}, {}, {}
local total_size = 0
for _, item in ipairs(images) do
  total_size = total_size + (tonumber(item.size) or 0)
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
  table.sort(group, function(a, b)
    return (tonumber(a.created) or 0) > (tonumber(b.created) or 0)
  end)
  local size = 0
  for _, item in ipairs(group) do
    size = size + (tonumber(item.size) or 0)
  end
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

print(string.format("total: %d images in %d repositories, %d dangling, %s (the NAS reports %s)",
  #images, #names, #dangling, format.size(total_size), tostring(total)))
