-- wrk: cycle through /products/1 .. /products/N (BENCH_KEYS, default 1000),
-- each thread from its own offset.
local n = tonumber(os.getenv("BENCH_KEYS") or "1000")
local threads = 0
local i = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  i = ((tid or 1) * 7919) % n
end

function request()
  i = i % n + 1
  return wrk.format("GET", "/products/" .. i)
end
