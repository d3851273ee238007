-- wrk script: POST /xAPI/statements with BATCH random statements per request, shaped like
-- bench/ingest.py's (1,000 learners, 500 activities, 20 registrations a learner, ~1 KB).
-- Usage: BATCH=100 AUTH="Basic ..." wrk -t2 -c8 -d20s -s bench/statements.lua http://127.0.0.1:8000
local batch = tonumber(os.getenv("BATCH") or "1")
local auth = os.getenv("AUTH") or ""
local verbs = {"attempted", "answered", "completed", "passed", "failed", "experienced",
               "progressed", "commented", "shared", "mastered"}
local counter = 0

local function uuid()
  local t = {}
  for i = 1, 16 do t[i] = math.random(0, 255) end
  t[7] = (t[7] % 16) + 64
  t[9] = (t[9] % 64) + 128
  return string.format("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                       (table.unpack or unpack)(t))
end

local function statement()
  local learner = math.random(0, 999)
  return string.format(
    '{"id":"%s","actor":{"objectType":"Agent","name":"Learner %d","account":' ..
    '{"homePage":"https://sis.example.org","name":"s%06d"}},' ..
    '"verb":{"id":"http://adlnet.gov/expapi/verbs/%s","display":{"en-US":"did"}},' ..
    '"object":{"objectType":"Activity","id":"https://courses.example.org/activities/%d",' ..
    '"definition":{"name":{"en-US":"An activity"},' ..
    '"type":"http://adlnet.gov/expapi/activities/assessment"}},' ..
    '"result":{"score":{"scaled":%.2f},"success":%s,"duration":"PT%dS"},' ..
    '"context":{"registration":"%s","contextActivities":' ..
    '{"parent":[{"id":"https://courses.example.org/c/1"}]}},' ..
    '"timestamp":"2026-10-01T10:00:00.000Z"}',
    uuid(), learner, learner, verbs[math.random(1, #verbs)], math.random(0, 499),
    math.random(), math.random() > 0.4 and "true" or "false", math.random(30, 899),
    string.format("%08x-0000-4000-8000-%012x", learner, math.random(0, 19)))
end

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + seed)
end

function request()
  local parts = {}
  for i = 1, batch do parts[i] = statement() end
  local body = "[" .. table.concat(parts, ",") .. "]"
  return wrk.format("POST", "/xAPI/statements", {
    ["Authorization"] = auth, ["X-Experience-API-Version"] = "1.0.3",
    ["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("HTTP " .. status .. ": " .. body .. "\n")
  end
end

done = function(summary, latency, requests)
  io.write(string.format("JSON {\"requests\": %d, \"seconds\": %f, \"errors\": %d, \"p50_ms\": %f, \"p95_ms\": %f, \"p99_ms\": %f}\n",
    summary.requests, summary.duration / 1e6,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
