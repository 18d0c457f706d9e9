-- wrk: a new key on every request (/products/ID with ID never requested
-- before in this run: BENCH_MISS_BASE differs per row, each thread has its
-- own range, and each wrk process its own stamp). The stamp matters: a
-- row runs wrk more than once with the same BENCH_MISS_BASE (the warm-up,
-- and the retries of a disturbed row), and without it every later process
-- would ask again for the keys the first one filled: hits, not misses.
local base = tonumber(os.getenv("BENCH_MISS_BASE") or "1")
-- The stamp is wrk's process id (Linux, as the rest of the bench), < 2^22,
-- the same in every thread's Lua state: with the base (< 2^40) the IDs
-- stay exact in a Lua number (2^53).
local function pid()
  local f = io.open("/proc/self/stat")
  if not f then
    return os.time() % 100000
  end
  local n = f:read("*n")
  f:close()
  return n
end
local stamp = pid()
local threads = 0
local i = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function request()
  i = i + 1
  return wrk.format("GET", string.format("/products/%d", base + stamp * 100000000 + (tid or 1) * 10000000 + i))
end
