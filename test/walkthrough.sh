#!/usr/bin/env bash
# make demo: the walkthrough against a running `make run` (start it in another terminal first): a 2-rank job
# to SUCCESS, a Syncthing configuration with ETags and a restart, an interactive session through the gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
run=${RUN_DIR:-.run}
[ -s "$run/env" ] && grep -q IM_URL "$run/env" || { echo "no running make run found ($run/env has no IM_URL): start make run first"; exit 1; }
# shellcheck disable=SC1091
source "$run/env"
curl -fsS "$IM_URL/healthz" >/dev/null || { echo "the local gateway at $IM_URL does not answer: is make run still up?"; exit 1; }
go run ./test/walkthrough/cmd/walkthrough
echo
echo "pods now in $JOBS_NAMESPACE (kubectl --kubeconfig $KUBECONFIG -n $JOBS_NAMESPACE get pods):"
if command -v kubectl >/dev/null; then kubectl --kubeconfig "$KUBECONFIG" -n "$JOBS_NAMESPACE" get pods -o wide; fi
