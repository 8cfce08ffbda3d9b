-- wrk script of `make bench-feed` (loadtest/feed_bench.py):
--
--   wrk -t1 -c8 -d20s -s loadtest/wrk_tokens.lua URL -- TOKENS_FILE [ACCEPT_ENCODING]
--
-- Each request is the URL's GET as the next user of TOKENS_FILE (one access token a line,
-- taken in turn), so the stack serves many distinct users rather than one warm one. At the
-- end it prints the run as one line, "wrk-json {...}", with wrk's own latency distribution.

local requests = {}
local next_request = 0

function init(args)
  local tokens_file, accept_encoding = args[1], args[2]
  for token in io.lines(tokens_file) do
    local headers = {["Authorization"] = "Bearer " .. token}
    if accept_encoding and accept_encoding ~= "" then
      headers["Accept-Encoding"] = accept_encoding
    end
    -- Formatted once: wrk then only hands out ready bytes.
    requests[#requests + 1] = wrk.format("GET", nil, headers)
  end
  if #requests == 0 then
    error("no tokens in " .. tostring(tokens_file))
  end
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function done(summary, latency, _)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  local ms = function(us) return us / 1000 end
  io.write(string.format(
    'wrk-json {"requests": %d, "seconds": %.3f, "requests_per_s": %.1f, "p50_ms": %.2f, "p90_ms": %.2f, '
      .. '"p99_ms": %.2f, "max_ms": %.2f, "mean_ms": %.2f, "bytes_per_request": %d, "non_2xx": %d, '
      .. '"socket_errors": %d}\n',
    summary.requests, seconds, summary.requests / seconds,
    ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)), ms(latency.max),
    ms(latency.mean), summary.requests > 0 and math.floor(summary.bytes / summary.requests) or 0, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
