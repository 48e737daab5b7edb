-- wrk script used by every row of bench/bench.py, so that every row pays
-- the same client-side cost (wrk and nginx share the CPUs).
--
--   wrk ... -s bench/wrk/owners.lua URL -- OWNERS THREADS [PREFIX]
--
-- Each request carries X-User-Id: <PREFIX><N> (PREFIX defaults to "u"),
-- N walking over [0, OWNERS), so that the gate sees OWNERS distinct
-- owners; OWNERS = 0 sends no X-User-Id at all.  Headers given to wrk
-- with -H are sent too: the JWT rows run with OWNERS = 0 and
-- -H "Authorization: Bearer <token>", one token per row.
--
-- Thread t (0-based) sends ids t, t+THREADS, t+2*THREADS, ... and starts
-- over at the end of its share: the threads together cover every id, and
-- no two threads share one.  Every row builds its request the same way,
-- per request (one string concatenation), so that the client's work per
-- request is the same whatever OWNERS is, and init() stays cheap (wrk's
-- CPU time, which the bench reports, includes init()).  Its cost is not
-- the same: a million distinct lines miss the caches that one line hits,
-- so bench.py compares many-owner rows with ungated runs of the same ids.

local nthreads_seen = 0

function setup(thread)
   thread:set("tid", nthreads_seen)
   nthreads_seen = nthreads_seen + 1
end

local head                  -- the request up to its last header
local ids = {}              -- "X-User-Id: ...\r\n" lines of this thread
local n = 0
local i = 0

function init(args)
   local owners = tonumber(args[1]) or 1
   local threads = tonumber(args[2]) or 1
   local prefix = args[3] or "u"
   local t = tid or 0

   -- wrk.format ends the headers with an empty line; keep it off
   head = wrk.format(nil, nil, nil, nil)
   head = string.sub(head, 1, -3)

   if owners > 0 then
      for k = t % owners, owners - 1, threads do
         n = n + 1
         ids[n] = "X-User-Id: " .. prefix .. k .. "\r\n"
      end
      if n == 0 then
         n = 1
         ids[1] = "X-User-Id: " .. prefix .. (t % owners) .. "\r\n"
      end
   else
      n = 1
      ids[1] = ""
   end
end

function request()
   i = i + 1
   if i > n then
      i = 1
   end
   return head .. ids[i] .. "\r\n"
end
