-- POST /v1/images/generations with the reference's TURBO poster body; key from BENCH_KEY.
wrk.method = "POST"
wrk.body = '{"model":"ideogram-v4","input":{"prompt":"A retro concert poster with bold headline text \\"SUMMER NIGHTS\\" in neon typography","size":"16:9","rendering_speed":"TURBO"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "none")
