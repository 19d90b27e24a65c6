#!/usr/bin/env bash
# Runs every Fuzz target of the project for FUZZTIME each (make test: 5s; make fuzz: 60s by default).
#
# Go's fuzzing engine sometimes ends a short run with "context deadline exceeded" and no failing input when the
# machine is busy (the time limit hits a worker mid-call; seen here at 79 execs/s on 2 loaded cores). That is
# not a finding: such a run is repeated once, and if it happens again it is reported but does not fail. Any
# run that writes a failing input fails.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-60s}
targets=$(git ls-files '*_test.go' | xargs -r grep -o -H '^func Fuzz[A-Za-z0-9_]*' | sed 's#^\(.*\)/[^/]*_test.go:func #./\1 #' || true)
if [ -z "$targets" ]; then echo "no fuzz targets"; exit 0; fi
engine_timeout() { grep -q "context deadline exceeded" <<<"$1" && ! grep -q "Failing input written" <<<"$1"; }
while read -r pkg target; do
  ok=
  for attempt in 1 2; do
    if out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1); then ok=1; break; fi
    engine_timeout "$out" || { echo "$out"; echo "FAIL fuzz $pkg $target"; exit 1; }
    echo "fuzz $pkg $target: the engine's time limit hit a running input (no failing input); attempt $attempt"
  done
  if [ -n "$ok" ]; then echo "fuzz ok ($FUZZTIME): $pkg $target"; else echo "fuzz $pkg $target: engine time-outs only, no failing input"; fi
done <<<"$targets"
