--- syno.image: the image functions bound to the default session.
-- See syno.operations for the functions and their arguments. The default
-- session is built on the first call, so loading this module needs no settings.
local syno = require "syno"
local operations = require "syno.operations"

return operations.image_module(function()
  return syno.default().session
end)
