-- wrk script: POST /v1/tickets with a fixed body (each request creates a new ticket).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_API_KEY")
wrk.body = '{"customer_id":"bench","channel":"web","subject":"Benchmark ticket","intent":"bench","priority":"P3"}'
