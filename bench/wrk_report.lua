-- wrk script: every request is authenticated, and the run is reported as one JSON line.
-- The API key comes from the environment, not the command line, which `ps` shows to everyone.
wrk.headers["api-key"] = os.getenv("BENCH_API_KEY")
-- The lab's domain, as a real client names it: nginx routes and logs by it.
wrk.headers["Host"] = os.getenv("BENCH_HOST")
if os.getenv("BENCH_CONNECTION_CLOSE") == "1" then
  -- The server closes after answering and wrk reconnects: one full handshake per request.
  wrk.headers["Connection"] = "close"
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "non_2xx": %d, ' ..
      '"socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
