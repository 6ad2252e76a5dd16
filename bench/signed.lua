-- wrk script for bench/ingest.py: each thread posts its own share of pre-signed, distinct order webhooks
-- (lines "signature<TAB>request-id<TAB>body" in the file named by BENCH_BODIES), so every request is a new
-- order, never a duplicate.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  NTHREADS = tonumber(os.getenv("BENCH_THREADS"))
  local path = os.getenv("BENCH_BODIES")
  local url_path = os.getenv("BENCH_PATH")
  items = {}
  local i = 0
  for line in io.lines(path) do
    if i % NTHREADS == tid then
      local sig, rid, body = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
      table.insert(items, wrk.format("POST", url_path, {
        ["Content-Type"] = "application/json",
        ["X-Commerce-Signature"] = sig,
        ["x-adobe-commerce-request-id"] = rid,
      }, body))
    end
    i = i + 1
  end
  index = 0
end

function request()
  index = index + 1
  if index > #items then
    -- out of distinct bodies: repeat (these become duplicates; the script sizes the file to avoid it)
    index = 1
  end
  return items[index]
end

function done(summary, latency, requests)
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "non_2xx": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
