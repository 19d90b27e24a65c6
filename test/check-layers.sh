#!/usr/bin/env bash
# The layering rule: functions/* import only shared/, so shared/ must never depend on gateway/ (what routes
# traffic) nor on test/ (fakes and environments). Fails, naming each offending package, when a package under
# shared/ has one of them among its dependencies, direct or not (test files excluded).
# Usage: test/check-layers.sh [module folder, default this project]
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
mod=$(go list -m)
status=0
for pkg in $(go list ./shared/...); do
  bad=$(go list -deps -f '{{.ImportPath}}' "$pkg" | grep -E "^$mod/(gateway|test)(/|$)" || true)
  if [ -n "$bad" ]; then
    echo "layering: $pkg depends on $(echo $bad | tr ' ' ','): shared/ must not import gateway/ or test/" >&2
    status=1
  fi
done
exit $status
