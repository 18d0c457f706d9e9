-- wrk: a new key on every request (/products/ID with ID never requested
-- before in this run: BENCH_MISS_BASE differs per run, each thread has its
-- own range).
local base = tonumber(os.getenv("BENCH_MISS_BASE") or "1")
local threads = 0
local i = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function request()
  i = i + 1
  return wrk.format("GET", string.format("/products/%d", base + (tid or 1) * 10000000 + i))
end
