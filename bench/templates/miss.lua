-- wrk: a new key on every request (/products/ID with ID never requested
-- before in this run: BENCH_MISS_BASE differs per row, each thread has its
-- own range, and each wrk process its own stamp). The stamp matters: a
-- row runs wrk more than once with the same BENCH_MISS_BASE (the warm-up,
-- and the retries of a disturbed row), and without it every later process
-- would ask again for the keys the first one filled: hits, not misses.
local base = tonumber(os.getenv("BENCH_MISS_BASE") or "1")
local stamp = os.time() % 100000 -- seconds: wrk processes of a row start >= 2 s apart
local threads = 0
local i = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
  thread:set("stamp", stamp)
end

function request()
  i = i + 1
  return wrk.format("GET", string.format("/products/%d", base + (stamp or 0) * 100000000 + (tid or 1) * 10000000 + i))
end
