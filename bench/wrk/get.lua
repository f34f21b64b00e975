-- GET the URL given on the command line with the key from BENCH_KEY.
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "none")
