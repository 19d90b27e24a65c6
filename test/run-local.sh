#!/usr/bin/env bash
# make run: the IM's local stack in the foreground: the real cluster (etcd, kube-apiserver, controller
# manager, scheduler, KWOK), PostgreSQL, the fake UCloud/Core, and every function built so far as its own
# process, wired by the environment variables the Knative manifests set in a cluster. Writes .run/env
# (source it), logs to .run/logs/<component>.log, and stops everything on Ctrl-C.
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
go build -o .run/bin/ ./functions/...

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
.run/bin/localenv jobs-namespace -dir .run/cluster -ns ucloud-jobs

# shellcheck disable=SC1091
source .run/env
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A serves=(
  [config-retrieve]="POST /ucloud/k8s/iapps/{app}/retrieve" [config-update]="POST /ucloud/k8s/iapps/{app}/update"
  [config-reset]="POST /ucloud/k8s/iapps/{app}/reset" [config-restart]="POST /ucloud/k8s/iapps/{app}/restart"
  [job-create]="POST /ucloud/k8s/jobs" [job-control]="POST /ucloud/k8s/jobs/{terminate,extend,interactiveSession}, GET .../retrieveProducts"
  [status-report]="CloudEvents com.github.ucloud-im.job.state.changed at POST /; the monitor's K_SINK"
  [monitor]="watches pods in ucloud-jobs; K_SINK=status-report (no Broker locally: events go straight to it)"
)
for f in config-retrieve config-update config-reset config-restart job-create job-control status-report monitor; do
  t=$(date +%s%N)
  port=$(free_port)
  # shellcheck disable=SC1091
  source .run/env
  K_SINK=${FN_STATUS_REPORT:-} PORT=$port .run/bin/$f >".run/logs/$f.log" 2>&1 &
  pids+=($!)
  ok=
  for _ in $(seq 200); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ok=1; break; fi
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$ok" ] || { echo "$f did not become ready:"; tail -5 ".run/logs/$f.log"; exit 1; }
  status "$f" "http://127.0.0.1:$port ready in $(ms "$t") ms  (${serves[$f]})"
  echo "export FN_${f//-/_}=http://127.0.0.1:$port" | tr 'a-z' 'A-Z' | sed 's/^EXPORT/export/; s/HTTP:/http:/' >>.run/env
done

echo
echo "ready in $(ms "$began") ms. source .run/env to use it; make token prints a Core token; Ctrl-C stops everything."
while :; do
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || echo "$(date +%T) a component (pid $p) exited; see .run/logs/"
  done
  sleep 5 &
  wait $! || true
done
