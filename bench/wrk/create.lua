-- POST /v1/images/generations with the reference's TURBO poster body.
-- BENCH_KEY is one key, or several separated by commas: then each request uses the next key in
-- turn (keys of different accounts spread the creates over that many balance rows).
wrk.method = "POST"
wrk.body = '{"model":"ideogram-v4","input":{"prompt":"A retro concert poster with bold headline text \\"SUMMER NIGHTS\\" in neon typography","size":"16:9","rendering_speed":"TURBO"}}'
wrk.headers["Content-Type"] = "application/json"

local keys = {}
for key in string.gmatch(os.getenv("BENCH_KEY") or "none", "[^,]+") do
  keys[#keys + 1] = key
end
wrk.headers["Authorization"] = "Bearer " .. keys[1]

if #keys > 1 then
  local turn = 0
  request = function()
    turn = turn % #keys + 1
    wrk.headers["Authorization"] = "Bearer " .. keys[turn]
    return wrk.format()
  end
end
