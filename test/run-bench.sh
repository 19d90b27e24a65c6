#!/usr/bin/env bash
# make bench: start-up of a function on the project's host against a bare net/http server (median of 20
# starts, exec -> /healthz 200), stripped binary sizes, and the Go benchmarks of the shared packages.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
out=.run/bench
mkdir -p "$out"
go build -ldflags "-s -w" -o "$out/hellofn" ./test/bench/hellofn
go build -ldflags "-s -w" -o "$out/hellobare" ./test/bench/hellobare
echo "== start-up: exec -> GET /healthz 200 (20 starts each; binaries stripped)"
go run ./test/bench/startup -n 20 "fn-host=$out/hellofn" "bare=$out/hellobare"
echo "== Go benchmarks"
go test -run '^$' -bench . -benchmem ./shared/...
echo "== configuration functions (processes on loopback, real PostgreSQL and apiserver)"
go build -o "$out/" ./functions/...
go run ./test/bench/iappsbench -bin "$out" -hello "$out/hellobare"
echo "== job creation (job-create process vs a direct client-go loop, real apiserver)"
go run ./test/bench/jobsbench -bin "$out"
echo "== monitor (10,000 KWOK pods; monitor and status-report as processes; strict fake Core)"
go run ./test/bench/monitorbench -bin "$out" -pods "${MONITOR_BENCH_PODS:-10000}"
echo "== application domain (processes on loopback: app-auth's decision and proxy, alone and behind the local gateway, against the upstream directly)"
go build -o "$out/" ./gateway/cmd/local-gateway ./functions/app-auth
go run ./test/bench/gatewaybench -gateway "$out/local-gateway" -appauth "$out/app-auth"
