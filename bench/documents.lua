-- wrk script: GET or PUT State documents among those bench/documents.py seeds
-- (activity n // 5000, learner n % 5000, stateId "bookmark"), each request a random one.
-- Usage: METHOD=GET STORED=100000 AUTH="Basic ..." wrk -t2 -c8 -d15s -s bench/documents.lua URL
local method = os.getenv("METHOD") or "GET"
local stored = tonumber(os.getenv("STORED") or "100000")
local auth = os.getenv("AUTH") or ""
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + seed)
end

function request()
  local n = math.random(0, stored - 1)
  local path = "/xAPI/activities/state?activityId=https%3A%2F%2Fcourses.example.org%2Factivities%2F"
    .. math.floor(n / 5000) .. "&agent=%7B%22mbox%22%3A%22mailto%3Alearner" .. (n % 5000)
    .. "%40school.example.org%22%7D&stateId=bookmark"
  local headers = {["Authorization"] = auth, ["X-Experience-API-Version"] = "1.0.3"}
  if method == "PUT" then
    headers["Content-Type"] = "application/json"
    return wrk.format("PUT", path, headers,
      string.format('{"page": %d, "suspend": "%s"}', math.random(0, 39), string.rep("y", 200)))
  end
  return wrk.format("GET", path, headers)
end

function response(status, headers, body)
  if status >= 300 then
    io.stderr:write("HTTP " .. status .. ": " .. body .. "\n")
  end
end

done = function(summary, latency, requests)
  io.write(string.format("JSON {\"requests\": %d, \"seconds\": %f, \"errors\": %d, \"p50_ms\": %f, \"p95_ms\": %f, \"p99_ms\": %f, \"max_ms\": %f}\n",
    summary.requests, summary.duration / 1e6,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
