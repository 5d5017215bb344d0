-- Busted output handler: busted's plain terminal output, then one closing line
-- "N passed, N failed" (failures and errors together), as CI reads it.
return function(options)
  local busted = require "busted"
  local handler = require "busted.outputHandlers.plainTerminal"(options)

  busted.subscribe({ "suite", "end" }, function()
    local failed = #handler.failures + #handler.errors
    io.write(string.format("\n%d passed, %d failed\n", #handler.successes, failed))
    io.flush()
    return nil, true
  end)

  return handler
end
