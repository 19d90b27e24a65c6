#!/usr/bin/env bash
# make run: the IM's local stack in the foreground. Today: the real cluster (etcd, kube-apiserver,
# controller manager, scheduler, KWOK), PostgreSQL and the fake UCloud/Core; each function joins it as it
# is built. Writes .run/env (source it), logs to .run/logs/, and stops everything on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
began=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
status() { printf '%-24s %s\n' "$1" "$2"; }

bash test/env/deps.sh
mkdir -p .run/bin .run/logs
go build -o .run/bin/localenv ./test/env/cmd/localenv
go build -o .run/bin/fakecore ./test/fakecore/cmd/fakecore

pids=()
cleanup() {
  trap - EXIT INT TERM
  echo; echo "stopping..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  .run/bin/localenv down -dir .run/cluster || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t=$(date +%s%N)
.run/bin/localenv up -dir .run/cluster -detach >/dev/null 2>.run/logs/localenv.log || { cat .run/logs/localenv.log; exit 1; }
# shellcheck disable=SC1091
source .run/cluster/env.sh
status "cluster + postgres" "ready in $(ms "$t") ms (component logs: .run/cluster/logs/)"

t=$(date +%s%N)
rm -f .run/core/url
.run/bin/fakecore serve -dir .run/core >.run/logs/fakecore.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s .run/core/url ] && break; sleep 0.05; done
[ -s .run/core/url ] || { echo "fake Core did not start:"; cat .run/logs/fakecore.log; exit 1; }
core_url=$(cat .run/core/url)
status "fake UCloud/Core" "$core_url ready in $(ms "$t") ms"

cat >.run/env <<ENV
export KUBECONFIG="$KUBECONFIG"
export DATABASE_URL="$DATABASE_URL"
export UCLOUD_PROVIDER_ID=k8s
export UCLOUD_CORE_URL="$core_url"
export UCLOUD_CORE_PUBLIC_KEY_FILE="$PWD/.run/core/core.pub"
export UCLOUD_REFRESH_TOKEN_FILE="$PWD/.run/core/refresh-token"
export UCLOUD_APPS_DOMAIN=apps.localhost
export JOBS_NAMESPACE=ucloud-jobs
ENV
echo
echo "ready in $(ms "$began") ms. source .run/env to use it; make token prints a Core token; Ctrl-C stops everything."
while :; do
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || echo "$(date +%T) a component (pid $p) exited; see .run/logs/"
  done
  sleep 5 &
  wait $! || true
done
