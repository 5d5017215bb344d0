-- core.form_encode, which builds every query string and form body.
local core = require "syno.core"

describe("core.form_encode", function()
  it("keeps the order of names", function()
    assert.are.equal("b=2&a=1&c=3", core.form_encode({ "b", "a", "c" }, { a = "1", b = "2", c = "3" }))
  end)

  it("skips nil values", function()
    assert.are.equal("a=1&c=3", core.form_encode({ "a", "b", "c" }, { a = "1", c = "3" }))
    assert.are.equal("", core.form_encode({ "a" }, {}))
    assert.are.equal("", core.form_encode({}, { a = "1" }))
  end)

  it("writes numbers and booleans as tostring does", function()
    local values = { i = 7, n = -42, min = math.mininteger, f = 1.5, whole = 2.0, yes = true, no = false }
    local names = { "i", "n", "min", "f", "whole", "yes", "no" }
    local expected = {}
    for _, name in ipairs(names) do
      expected[#expected + 1] = name .. "=" .. core.escape(tostring(values[name]))
    end
    assert.are.equal(table.concat(expected, "&"), core.form_encode(names, values))
  end)

  it("encodes every byte as core.escape does", function()
    local bytes = {}
    for byte = 0, 255 do
      bytes[#bytes + 1] = string.char(byte)
    end
    local text = table.concat(bytes)
    assert.are.equal(core.escape(text) .. "=" .. core.escape(text),
      core.form_encode({ text }, { [text] = text }))
  end)

  it("builds a form longer than its short buffer", function()
    local names, values, expected = {}, {}, {}
    for index = 1, 300 do
      names[index] = "name" .. index
      values[names[index]] = "é " .. index
      expected[index] = names[index] .. "=%C3%A9%20" .. index
    end
    local form = core.form_encode(names, values)
    assert.is_true(#form > 4096)
    assert.are.equal(table.concat(expected, "&"), form)
  end)

  it("rejects a value that is not text", function()
    local ok, message = pcall(core.form_encode, { "a" }, { a = {} })
    assert.is_false(ok)
    assert.matches("value of a must be a string, number or boolean, got table", message, 1, true)
  end)

  it("rejects a name that is not a string", function()
    local ok, message = pcall(core.form_encode, { 1 }, {})
    assert.is_false(ok)
    assert.matches("name 1 must be a string, got number", message, 1, true)
  end)
end)
