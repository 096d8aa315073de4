-- wrk script: POST a ~300-byte chat request (see common.lua for the knobs).
--   wrk -t1 -c64 -d10s --latency -s bench/post-small.lua http://127.0.0.1:8080
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")
common.install(300)
