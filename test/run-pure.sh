#!/usr/bin/env bash
# make test-pure: `go test ./shared/... ./gateway/...` as on a newcomer's machine where the control plane was
# never built: an empty cache (UCLOUD_IM_CACHE), no KUBECONFIG and no DATABASE_URL. Every pure test must run
# and pass; each cluster test must skip with envtest's reason (NeedsCluster), never pass unseen or fail.
# PostgreSQL-only tests still run when Debian's PostgreSQL is installed (they start their own). Prints the
# counts and the total time, go build included.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
cache=$(mktemp -d)
out=$(mktemp)
trap 'rm -rf "$cache" "$out"' EXIT
t0=$(date +%s%N)
status=0
UCLOUD_IM_CACHE=$cache KUBECONFIG= DATABASE_URL= UCLOUD_IM_REQUIRE_CLUSTER= \
  go test -count=1 -v ./shared/... ./gateway/... >"$out" 2>&1 || status=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
passed=$(grep -c -- '--- PASS:' "$out" || true)
failed=$(grep -c -- '--- FAIL:' "$out" || true)
skipped=$(grep -c -- '--- SKIP:' "$out" || true)
# A skip's reason is logged on the line before its "--- SKIP:" line (go test -v streams a test's log).
reasons() { grep -B1 -- '--- SKIP:' "$out" | grep -v -- '--- SKIP:\|^--$'; }
unexplained=$(reasons | grep -vc 'needs the local cluster\|needs PostgreSQL' || true)
grep -- '--- FAIL:\|^FAIL\|^panic:' "$out" || true
echo "pure tests: $passed passed, $failed failed, $skipped skipped (cluster tests), $unexplained skipped for another reason"
echo "pure tests: $((ms / 1000)).$(( (ms % 1000) / 100 )) s in all, go build included ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$unexplained" -ne 0 ]; then
  [ "$unexplained" -ne 0 ] && grep -B1 -- '--- SKIP:' "$out" | grep -v 'needs the local cluster\|needs PostgreSQL'
  exit 1
fi
if [ "$ms" -gt 60000 ]; then
  echo "pure tests: over 60 s (issue 17's bound on this machine; the figure includes go build and depends on the load)"
fi
