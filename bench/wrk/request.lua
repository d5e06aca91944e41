-- wrk script for bench/gate.sh: one fixed request per connection, optional pacing, and one
-- machine-readable result line.
--
-- Environment: BENCH_METHOD (GET), BENCH_BODY (JSON, optional), BENCH_AUTH (full
-- Authorization value, optional), BENCH_DELAY_MS (pause before each request on a
-- connection; 0 = as fast as possible).

wrk.method = os.getenv("BENCH_METHOD") or "GET"

local body = os.getenv("BENCH_BODY") or ""
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

local auth = os.getenv("BENCH_AUTH") or ""
if auth ~= "" then
  wrk.headers["Authorization"] = auth
end

local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0
if pause > 0 then
  -- wrk starts its latency clock when the request is written, after this pause.
  function delay()
    return pause
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
