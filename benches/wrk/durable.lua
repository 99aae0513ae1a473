-- wrk script: every request a fresh genuine SUN scan (`cargo bench --bench wrk_durable` writes
-- the paths and runs it). Usage: wrk -t T -c C -d D -s durable.lua URL -- PATHS_FILE T
--
-- PATHS_FILE holds one request path per line, round by round (round r: counter r+1 of every
-- tag, the tags in the same order each round). Thread k of T sends lines k, k+T, k+2T, …: with
-- an even number of tags per round each tag belongs to one thread, which sends its counters in
-- rising order. The requests are formatted in `init`, before the clock starts.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local file, nthreads = args[1], tonumber(args[2])
   reqs = {}
   local i = 0
   for line in io.lines(file) do
      if i % nthreads == id then
         reqs[#reqs + 1] = wrk.format("GET", line)
      end
      i = i + 1
   end
   sent = 0
   exhausted = 0
end

function request()
   sent = sent + 1
   local r = reqs[sent]
   if r == nil then
      -- Out of prepared scans: repeat the last one (a replay, counted as not passed).
      exhausted = exhausted + 1
      r = reqs[#reqs]
   end
   return r
end

function done(summary, latency, requests)
   local over = 0
   for _, t in ipairs(threads) do
      over = over + (t:get("exhausted") or 0)
   end
   if over > 0 then
      io.write(string.format("durable.lua: %d requests beyond the prepared scans (replays)\n", over))
   end
end
