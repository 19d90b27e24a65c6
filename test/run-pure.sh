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
  go test -count=1 -json ./shared/... ./gateway/... >"$out" 2>&1 || status=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# go test -json: one event per line; a test's skip reason is one of its output events.
summary=$(awk '
  function field(name,   m) { if (match($0, "\"" name "\":\"[^\"]*\"")) return substr($0, RSTART + length(name) + 4, RLENGTH - length(name) - 5); return "" }
  /"Test":/ {
    key = field("Package") " " field("Test")
    if (/"Action":"output"/ && /needs the local cluster|needs PostgreSQL/) explained[key] = 1
    if (/"Action":"pass"/) passed++
    if (/"Action":"fail"/) { failed++; print "FAIL " key > "/dev/stderr" }
    if (/"Action":"skip"/) skipped[key] = 1
  }
  /"Action":"fail"/ && !/"Test":/ { print "FAIL " field("Package") > "/dev/stderr"; pkgfail++ }
  /"Action":"output"/ && /build failed|\[setup failed\]/ { pkgfail++ }
  END {
    for (k in skipped) { n++; if (!(k in explained)) { other++; print "SKIPPED FOR ANOTHER REASON: " k > "/dev/stderr" } }
    printf "%d %d %d %d %d\n", passed, failed, n, other, pkgfail
  }' "$out")
read -r passed failed skipped other pkgfail <<<"$summary"
echo "pure tests: $passed passed, $failed failed, $skipped skipped (cluster tests), $other skipped for another reason"
echo "pure tests: $((ms / 1000)).$(( (ms % 1000) / 100 )) s in all, go build included ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$other" -ne 0 ] || [ "$pkgfail" -ne 0 ]; then
  grep -v '"Action":"\(run\|pass\|skip\|pause\|cont\|start\)"' "$out" | grep -i 'fail\|panic' | head -40
  exit 1
fi
if [ "$ms" -gt 60000 ]; then
  echo "pure tests: over 60 s (issue 17's bound on this machine; the figure includes go build and depends on the load)"
fi
