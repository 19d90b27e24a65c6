#!/usr/bin/env bash
# Runs every Fuzz target of the project for FUZZTIME each (make test: 5s; make fuzz: 60s by default).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-60s}
targets=$(git ls-files '*_test.go' | xargs -r grep -o -H '^func Fuzz[A-Za-z0-9_]*' | sed 's#^\(.*\)/[^/]*_test.go:func #./\1 #' || true)
if [ -z "$targets" ]; then echo "no fuzz targets"; exit 0; fi
while read -r pkg target; do
  if ! out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1); then
    echo "$out"; echo "FAIL fuzz $pkg $target"; exit 1
  fi
  echo "fuzz ok ($FUZZTIME): $pkg $target"
done <<<"$targets"
