#!/usr/bin/env bash
# make bench: start-up of a function on the project's host against a bare net/http server (exec -> /healthz
# 200), stripped binary sizes, the Go benchmarks of the shared packages, and the benchmark programs of
# test/bench, each next to its anchor measured in the same run. Figures only: nothing here asserts a time.
#
# BENCH_SHORT=1 (make bench-short; make test runs it) runs every program at small sizes, a few seconds each,
# in one environment shared by the programs (BENCH_ENV_DIR: a running localenv folder to use instead of
# starting one), so that a broken benchmark fails CI; the figures it prints are too small to quote.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
began=$(date +%s)
out=.run/bench
mkdir -p "$out"

if [ -n "${BENCH_SHORT:-}" ]; then
  starts=5 benchtime=1x
  iapps=(-duration 1s) jobs=(-jobs 50 -bulk 25) monitor=(-pods "${MONITOR_BENCH_PODS:-200}" -duration 3s)
  gateway=(-duration 1s -websockets 100)
  streams=(-keys 50 -lines 2000)
  if [ -z "${BENCH_ENV_DIR:-}" ]; then
    go build -o .run/bin/localenv ./test/env/cmd/localenv
    export BENCH_ENV_DIR=$out/env
    .run/bin/localenv up -dir "$BENCH_ENV_DIR" -detach >/dev/null
    trap '.run/bin/localenv down -dir "$BENCH_ENV_DIR" >/dev/null || true' EXIT
  fi
  export BENCH_ENV_DIR
else
  starts=20 benchtime=1s
  iapps=() jobs=() monitor=(-pods "${MONITOR_BENCH_PODS:-10000}" -rate "${MONITOR_BENCH_RATE:-50}" -duration "${MONITOR_BENCH_DURATION:-60s}"
    -monitor-gomemlimit "${MONITOR_BENCH_GOMEMLIMIT:-}")
  gateway=()
  streams=()
fi

go build -ldflags "-s -w" -o "$out/hellofn" ./test/bench/hellofn
go build -ldflags "-s -w" -o "$out/hellobare" ./test/bench/hellobare
# One go build for the functions the programs run, the gateway and the programs: the links run side by side.
# Built as ko builds the images (.ko.yaml: static, -trimpath, stripped), so memory and start-up are the deployed binaries'.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/" ./functions/config-retrieve ./functions/config-update ./functions/job-create \
  ./functions/status-report ./functions/monitor ./functions/app-auth ./functions/job-streams ./gateway/cmd/local-gateway \
  ./test/bench/startup ./test/bench/iappsbench ./test/bench/jobsbench ./test/bench/monitorbench ./test/bench/gatewaybench \
  ./test/bench/streamsbench

echo "== start-up: exec -> GET /healthz 200 ($starts starts each; binaries stripped)"
"$out/startup" -n "$starts" "bare=$out/hellobare" "fn-host=$out/hellofn" "fn-host+metrics=$out/hellofn"
echo "== Go benchmarks"
mapfile -t pkgs < <(grep -rl --include='*_test.go' '^func Benchmark' shared | xargs -n1 dirname | sort -u | sed 's|^|./|')
go test -run '^$' -bench . -benchtime "$benchtime" -benchmem "${pkgs[@]}"
echo "== configuration functions (processes on loopback, real PostgreSQL and apiserver)"
"$out/iappsbench" -bin "$out" -hello "$out/hellobare" "${iapps[@]}"
echo "== job creation (job-create process vs a direct client-go loop, real apiserver)"
"$out/jobsbench" -bin "$out" "${jobs[@]}"
echo "== monitor (KWOK pods; monitor and status-report as processes; strict fake Core)"
"$out/monitorbench" -bin "$out" "${monitor[@]}"
echo "== application domain (processes on loopback: app-auth's decision and proxy, alone and behind the local gateway, against the upstream directly)"
"$out/gatewaybench" -gateway "$out/local-gateway" -appauth "$out/app-auth" "${gateway[@]}"
echo "== job page streams (job-streams process vs client-go to the apiserver directly; KWOK pod, exec runs on this machine)"
"$out/streamsbench" -bin "$out" "${streams[@]}" 2> >(grep -v 'use of closed network connection' >&2)
echo "make bench${BENCH_SHORT:+ (short)}: $(( $(date +%s) - began )) s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
