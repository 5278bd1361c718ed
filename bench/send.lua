-- wrk script: POST a message to one room with a bearer token.
-- Usage: TOKEN=… ROOM=… wrk -s bench/send.lua http://127.0.0.1:PORT
local token = os.getenv("TOKEN")
local room = os.getenv("ROOM")
local counter = 0
request = function()
  counter = counter + 1
  local body = '{"content":"benchmark message ' .. counter .. '"}'
  return wrk.format("POST", "/api/chatrooms/" .. room .. "/messages",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end
done = function(summary, latency, requests)
  io.write(string.format("requests=%d errors=%d non2xx=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
