--- syno.image: the image functions bound to the default session.
-- See syno.functions for the functions and their arguments. The default
-- session is built on the first call, so loading this module needs no settings.
local syno = require "syno"
local functions = require "syno.functions"

return functions.image_module(function()
  return syno.default().session
end)
