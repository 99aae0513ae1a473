-- wrk script: /healthz through a Lua `request()`, as durable.lua sends its scans
-- (`cargo bench --bench wrk_durable`): the load generator's own cost of a scripted request,
-- without the scan. Usage: wrk -t T -c C -d D -s healthz.lua URL

function init(args)
   req = wrk.format("GET", "/healthz")
end

function request()
   return req
end
