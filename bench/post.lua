-- post.lua: wrk script for bench/run.sh. POSTs the body in $BENCH_BODY
-- (JSON) to the URL's path and, when wrk is done, writes one JSON object of
-- figures to $BENCH_OUT:
--   requests, duration_us, rps, lat_{p50,p90,p99,max,mean}_us,
--   err_status (answers with status > 399, wrk's count; this is the
--   "non-2xx" figure: the servers here send no 1xx/3xx), err_connect,
--   err_read, err_write, err_timeout (socket errors).
-- No per-response hook: it would cost wrk CPU on a 2-core machine.

local function slurp(path)
  local f = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
  local s = f:read("*a")
  f:close()
  return s
end

wrk.method = "POST"
wrk.body = slurp(os.getenv("BENCH_BODY"))
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  out:write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"rps":%.3f,' ..
    '"lat_p50_us":%d,"lat_p90_us":%d,"lat_p99_us":%d,"lat_max_us":%d,"lat_mean_us":%.1f,' ..
    '"err_status":%d,"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout))
  out:close()
end
