-- image.list requests a long listing in pages of functions.list_page_size
-- images, and lists again in one request when the inventory changes between
-- two pages. The page size is lowered here so the home-lab fixture (41
-- images without the DSM image) spans several pages.
local testenv = require "testenv"
local functions = require "syno.functions"

-- Returns the sequence number of the last request in sim's log.
local function last_seq(sim)
  local log = sim:log()
  return #log > 0 and log[#log].seq or 0
end

-- Returns "offset,limit" of every image list request in sim's log after seq.
local function list_requests(sim, seq)
  local requests = {}
  for _, call in ipairs(sim:calls("SYNO.Docker.Image", "list")) do
    if call.seq > (seq or 0) then
      requests[#requests + 1] = call.query.offset .. "," .. call.query.limit
    end
  end
  return requests
end

local function ids(images)
  local list = {}
  for index, image in ipairs(images) do
    list[index] = image.id .. " " .. image.repository .. ":" .. image.tag
  end
  return list
end

describe("image.list in pages", function()
  local sim, nas, saved_page_size

  setup(function()
    sim = testenv.start_sim()
    saved_page_size = functions.list_page_size
  end)

  teardown(function()
    functions.list_page_size = saved_page_size
    sim:stop()
  end)

  before_each(function()
    sim:reset()
    nas = testenv.connect(sim)
  end)

  after_each(function()
    functions.list_page_size = saved_page_size
    nas:close()
  end)

  it("joins pages into one listing", function()
    local whole, whole_total = nas.image.list()
    local seq = last_seq(sim)
    functions.list_page_size = 10
    local paged, paged_total = nas.image.list()
    assert.are.equal(41, #whole)
    assert.are.same(ids(whole), ids(paged))
    assert.are.equal(whole_total, paged_total)
    assert.are.same({ "0,10", "10,10", "20,10", "30,10", "40,10" }, list_requests(sim, seq))
  end)

  it("stops at the total", function()
    functions.list_page_size = 41
    local images = nas.image.list()
    assert.are.equal(41, #images)
    assert.are.same({ "0,41" }, list_requests(sim))
  end)

  it("splits a limit above the page size", function()
    local all = nas.image.list()
    local seq = last_seq(sim)
    functions.list_page_size = 10
    local images, total = nas.image.list { offset = 3, limit = 25 }
    assert.are.equal(25, #images)
    assert.are.equal(41, total)
    assert.are.same({ table.unpack(ids(all), 4, 28) }, ids(images))
    assert.are.same({ "3,10", "13,10", "23,5" }, list_requests(sim, seq))
  end)

  it("lists again when the inventory changes", function()
    functions.list_page_size = 10
    local other = testenv.connect(sim)
    local session = nas.session
    local pages = 0
    -- Between the first and the second page, another client deletes an image
    -- that the first page returned, so every later page shifts by one.
    session.request = function(self, request)
      local data = getmetatable(self).__index.request(self, request)
      if request.method == "list" then
        pages = pages + 1
        if pages == 1 then
          other.image.delete(data.images[1], { force = true })
        end
      end
      return data
    end
    local images, total = nas.image.list()
    session.request = nil
    other:close()
    assert.are.equal(40, #images)
    assert.are.equal(40, total)
    assert.are.same(ids(nas.image.list()), ids(images))
    assert.are.same({ "0,10", "10,10", "0,-1", "0,10", "10,10", "20,10", "30,10" },
      list_requests(sim))
  end)
end)
