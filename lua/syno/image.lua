--- syno.image: the image functions bound to the default session.
-- See syno.operations for the functions and their arguments.
local syno = require "syno"

return syno.default().image
