#!/usr/bin/env bash
# make test: installs what is missing, starts the real local environment once for all packages, runs vet,
# the unit and integration tests and a short fuzzing budget against it, stops it, and prints the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
FUZZTIME=${FUZZTIME:-5s}

bash test/env/deps.sh
mkdir -p .run/bin
go build -o .run/bin/localenv ./test/env/cmd/localenv

dir=.run/test-env
# Unset so the environment, not a developer's cluster or database, is what the tests see.
unset KUBECONFIG DATABASE_URL
t0=$(date +%s%N)
.run/bin/localenv up -dir "$dir" -detach >/dev/null
trap '.run/bin/localenv down -dir "$dir" || true' EXIT
up_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
startup_ms=$(sed -n 's/.*"startupMs": \([0-9]*\).*/\1/p' "$dir/state.json")
# shellcheck disable=SC1091
source "$dir/env.sh"
export KUBECONFIG DATABASE_URL

echo "== gofmt / go vet / layering (shared/ imports neither gateway/ nor test/)"
unformatted=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted"; exit 1; fi
go vet ./...
bash test/check-layers.sh

echo "== go test"
# Every test runs here: a cluster test that would skip for want of the cluster (envtest.NeedsCluster) fails.
export UCLOUD_IM_REQUIRE_CLUSTER=1
export UCLOUD_IM_FIGURES=$PWD/.run/figures.txt
rm -f "$UCLOUD_IM_FIGURES"
go test -count=1 -timeout 30m ./...

echo "== fuzz (seed corpora ran above)"
FUZZTIME=$FUZZTIME bash test/run-fuzz.sh

echo "== short benchmarks (make bench-short in this environment: a broken benchmark fails make test)"
bench_t0=$(date +%s)
BENCH_SHORT=1 BENCH_ENV_DIR="$dir" bash test/run-bench.sh
echo "short benchmarks: $(( $(date +%s) - bench_t0 )) s of make test" >>"$UCLOUD_IM_FIGURES"

echo "== figures measured by the tests"
cat "$UCLOUD_IM_FIGURES" 2>/dev/null || true
echo "environment: up in ${startup_ms} ms (servers ready), ${up_ms} ms including build check; logs in $dir/logs"
