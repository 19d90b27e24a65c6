#!/usr/bin/env bash
# make run: the whole IM on this machine, in the foreground: the real cluster (etcd, kube-apiserver,
# controller manager, scheduler, KWOK), PostgreSQL, the fake UCloud/Core, every function as its own process
# (the binaries the images contain), and the local gateway standing in for Knative's ingress. They are wired
# by the environment variables the Knative manifests set in a cluster. Writes $RUN_DIR/env (source it), logs
# every component to $RUN_DIR/logs/<component>.log (pids in $RUN_DIR/pids/<component>), and stops everything
# on Ctrl-C, SIGTERM (to it or to its whole process group) or SIGHUP (its terminal closed).
#
# RUN_DIR (default .run) lets a test run a second stack beside a developer's.
#
# Against a real UCloud/Core (a provider's development instance) instead of the fake one: give all of
# UCLOUD_CORE_URL, UCLOUD_CORE_PUBLIC_KEY_FILE and UCLOUD_REFRESH_TOKEN_FILE (and UCLOUD_PROVIDER_ID when the
# provider is not "k8s"); no fake Core starts, and that Core must reach IM_URL (see the README).
set -euo pipefail
given_core_url=${UCLOUD_CORE_URL:-} given_core_key=${UCLOUD_CORE_PUBLIC_KEY_FILE:-} given_refresh=${UCLOUD_REFRESH_TOKEN_FILE:-}
provider=${UCLOUD_PROVIDER_ID:-k8s}
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
run=${RUN_DIR:-.run}
run=$(mkdir -p "$run" && cd "$run" && pwd)
began=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
status() { printf '%-22s %s\n' "$1" "$2"; }

bash test/env/deps.sh
rm -rf "$run/pids"
mkdir -p "$run/bin" "$run/logs" "$run/pids"
t=$(date +%s%N)
go build -o "$run/bin/localenv" ./test/env/cmd/localenv
go build -o "$run/bin/fakecore" ./test/fakecore/cmd/fakecore
go build -o "$run/bin/" ./functions/... ./gateway/cmd/local-gateway ./shared/store/cmd/migrate
status "build" "$(ms "$t") ms"

pids=() names=()
stopping=
# cleanup stops everything, however the script ends: Ctrl-C (SIGINT), SIGTERM to the whole process group (a
# service manager), SIGHUP (the terminal closed), an error. It runs once and to the end: further signals are
# ignored (not reset to their default, which let a second one end it part-way), and it never fails on its
# own output, which may go to a closed terminal or pipe. The cluster's processes run in process groups of
# their own, so only localenv down stops them.
cleanup() {
  [ -n "$stopping" ] && return
  stopping=1
  trap '' INT TERM HUP PIPE
  set +e
  echo; echo "stopping..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  # Its output goes to the log: the terminal may be gone.
  [ -x "$run/bin/localenv" ] && "$run/bin/localenv" down -dir "$run/cluster" >>"$run/logs/localenv.log" 2>&1
  echo "stopped"
}
# shellcheck source=test/stop-traps.sh
source test/stop-traps.sh
stop_traps cleanup

t=$(date +%s%N)
# Unset so make run always starts its own cluster and database, never a developer's.
unset KUBECONFIG DATABASE_URL
"$run/bin/localenv" up -dir "$run/cluster" -detach >/dev/null 2>"$run/logs/localenv.log" || { cat "$run/logs/localenv.log"; exit 1; }
# shellcheck disable=SC1091
source "$run/cluster/env.sh"
status "cluster + postgres" "ready in $(ms "$t") ms (their logs: $run/cluster/logs/)"

# The migrate step, as the Job ucloud-im-migrate runs it in a cluster: as the schema's owner, apply the
# migrations and every function's role; each function's login (user, random password) is written once to
# $run/db/<function> and is what that function connects with.
t=$(date +%s%N)
DATABASE_LOGINS_DIR="$run/db" "$run/bin/migrate" -generate >"$run/logs/migrate.log" 2>&1 || { echo "migrate failed:"; tail -5 "$run/logs/migrate.log"; exit 1; }
status "migrate" "schema and roles in $(ms "$t") ms (logins: $run/db/)"

t=$(date +%s%N)
# Values left in the shell by sourcing an earlier run's env name that run's fake Core: not a real one.
case "$given_core_key" in "$run"/core/*) given_core_url="" given_core_key="" given_refresh="" ;; esac
if [ -n "$given_core_url" ] && [ -n "$given_core_key" ] && [ -n "$given_refresh" ]; then
  for f in "$given_core_key" "$given_refresh"; do
    [ -s "$f" ] || { echo "$f is missing or empty"; exit 1; }
  done
  core_url=$given_core_url
  core_key=$(cd "$(dirname "$given_core_key")" && pwd)/$(basename "$given_core_key")
  core_refresh=$(cd "$(dirname "$given_refresh")" && pwd)/$(basename "$given_refresh")
  status "UCloud/Core" "$core_url (given; no fake Core; provider $provider)"
elif [ -n "$given_core_url$given_core_key$given_refresh" ]; then
  echo "make run against a real Core needs all of UCLOUD_CORE_URL, UCLOUD_CORE_PUBLIC_KEY_FILE and UCLOUD_REFRESH_TOKEN_FILE"
  exit 1
else
  rm -f "$run/core/url"
  "$run/bin/fakecore" serve -dir "$run/core" -provider "$provider" >"$run/logs/fakecore.log" 2>&1 &
  pids+=($!) names+=(fakecore)
  echo $! >"$run/pids/fakecore"
  for _ in $(seq 100); do [ -s "$run/core/url" ] && break; sleep 0.05; done
  [ -s "$run/core/url" ] || { echo "fake Core did not start:"; cat "$run/logs/fakecore.log"; exit 1; }
  core_url=$(cat "$run/core/url") core_key="$run/core/core.pub" core_refresh="$run/core/refresh-token"
  status "fake UCloud/Core" "$core_url ready in $(ms "$t") ms"
fi

# The key that signs interactive-session tokens and cookies (a Secret in a cluster).
[ -s "$run/gateway.key" ] || (umask 077; head -c 48 /dev/urandom | base64 >"$run/gateway.key")
cat >"$run/env" <<ENV
export KUBECONFIG="$KUBECONFIG"
# The schema owner's (for psql); each function gets its own role's URL from $run/db/<function>.
export DATABASE_URL="$DATABASE_URL"
export UCLOUD_PROVIDER_ID=$provider
export UCLOUD_CORE_URL="$core_url"
export UCLOUD_CORE_PUBLIC_KEY_FILE="$core_key"
export UCLOUD_REFRESH_TOKEN_FILE="$core_refresh"
export UCLOUD_APPS_DOMAIN=apps.localhost
export UCLOUD_GATEWAY_KEY_FILE="$run/gateway.key"
export JOBS_NAMESPACE=ucloud-jobs
# app-auth reaches a job's Service through its EndpointSlices, on this machine only (KWOK's pods run nothing).
export APP_UPSTREAMS=local
export FAKECORE_DIR="$run/core"
# Events carry a real ServiceAccount token, as in a cluster: the monitor asks the apiserver's TokenRequest
# API for one of ucloud-im/ucloud-im-monitor with status-report's audience; status-report checks it against
# the apiserver's issuer and accepts that ServiceAccount only (in a cluster: the job-state Trigger's).
export EVENT_AUDIENCE=serving.knative.dev/service/ucloud-im/status-report
export EVENT_SENDERS=system:serviceaccount:ucloud-im:ucloud-im-monitor
export EVENT_TOKEN_SERVICE_ACCOUNT=ucloud-im/ucloud-im-monitor
export EVENT_TOKEN_AUDIENCE=serving.knative.dev/service/ucloud-im/status-report
ENV
"$run/bin/localenv" jobs-namespace -dir "$run/cluster" -ns ucloud-jobs
"$run/bin/localenv" service-account -dir "$run/cluster" -ns ucloud-im -name ucloud-im-monitor

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# start NAME CHECK-PATH DESCRIPTION [PORT]: runs $run/bin/NAME on PORT or a free port (left in $port), waits for it to answer.
start() {
  local name=$1 check=$2 what=$3 t
  t=$(date +%s%N)
  port=${4:-$(free_port)}
  # shellcheck disable=SC1091
  source "$run/env"
  # Each function connects as its own database role; one that uses no database gets no URL at all.
  local db=""
  [ -s "$run/db/$name" ] && db=$(cat "$run/db/$name")
  # Every function serves its metrics on a listener of its own (METRICS_ADDR), which the gateway never routes.
  metrics_port=""
  [ "$name" != local-gateway ] && metrics_port=$(free_port)
  DATABASE_URL=$db PORT=$port METRICS_ADDR=${metrics_port:+127.0.0.1:$metrics_port} "$run/bin/$name" >"$run/logs/$name.log" 2>&1 &
  pids+=($!) names+=("$name")
  echo $! >"$run/pids/$name"
  for _ in $(seq 300); do
    if curl -fsS "http://127.0.0.1:$port$check" >/dev/null 2>&1; then
      status "$name" "http://127.0.0.1:$port ready in $(ms "$t") ms  ($what)"
      if [ -n "$metrics_port" ]; then
        status "" "metrics: http://127.0.0.1:$metrics_port/metrics"
        echo "export METRICS_$(echo "$name" | tr 'a-z-' 'A-Z_')=http://127.0.0.1:$metrics_port/metrics" >>"$run/env"
      fi
      return 0
    fi
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.05
  done
  echo "$name did not become ready:"; tail -5 "$run/logs/$name.log"; exit 1
}

# The gateway's port is chosen first: job-control hands browsers shell sessions at its address.
gateway_port=$(free_port)
echo "export UCLOUD_IM_PUBLIC_URL=http://127.0.0.1:$gateway_port" >>"$run/env"
for f in config-retrieve config-update config-reset config-restart job-create job-control job-streams app-auth status-report monitor; do
  case $f in
    config-*) what="POST /ucloud/$provider/iapps/{app}/${f#config-}" ;;
    job-create) what="POST /ucloud/$provider/jobs" ;;
    job-control) what="POST /ucloud/$provider/jobs/{terminate,extend,interactiveSession}, GET .../retrieveProducts" ;;
    job-streams) what="GET /ucloud/jobs.provider.$provider/websocket (Core's log follow), GET /ucloud/$provider/websocket (shells)" ;;
    app-auth) what="every app host: authorize-app, the decision, the proxy to the job's Service" ;;
    status-report) what="CloudEvents com.github.ucloud-im.job.state.changed at POST /, from ucloud-im-monitor's token only" ;;
    monitor) what="watches pods in ucloud-jobs; K_SINK = status-report, standing in for Broker + Trigger; sends with ucloud-im-monitor's token" ;;
  esac
  if [ "$f" = monitor ]; then echo "export K_SINK=\"\$FN_STATUS_REPORT\"" >>"$run/env"; fi
  start "$f" /readyz "$what"
  echo "export FN_$(echo "$f" | tr 'a-z-' 'A-Z_')=http://127.0.0.1:$port" >>"$run/env"
done
start local-gateway /healthz "Knative's ingress locally: the API host by path, *.apps.localhost by KIngress (-> app-auth)" "$gateway_port"
echo "export IM_URL=http://127.0.0.1:$port" >>"$run/env"

echo
echo "ready in $(ms "$began") ms."
echo "  IM_URL (the one base URL Core uses): http://127.0.0.1:$port"
echo "  application domain: *.apps.localhost, through the same gateway (send the app's Host header)"
echo "  metrics (Prometheus text, one listener per function, never behind the gateway): \$METRICS_<FUNCTION> in $run/env"
echo "  source $run/env to use it; make token prints a Core token; make demo walks through it; make logs tails the logs"
echo "  Ctrl-C stops everything."
declare -A reported=()
# Started from a terminal, make run stops when the terminal closes. The kernel's hang-up signals only the
# session's leader (the shell), which passes SIGHUP on to its jobs; where that does not reach this script
# (seen with the shell ending first), the hang-up still took the terminal away from every process of the
# session, so /dev/tty no longer opens: that stops everything as SIGHUP does.
had_terminal=
{ : >/dev/tty; } 2>/dev/null && had_terminal=1
while :; do
  if [ -n "$had_terminal" ] && ! { : >/dev/tty; } 2>/dev/null; then
    trap '' INT TERM HUP PIPE
    exit 129
  fi
  for i in "${!pids[@]}"; do
    if [ -z "${reported[$i]:-}" ] && ! kill -0 "${pids[$i]}" 2>/dev/null; then
      wait "${pids[$i]}" 2>/dev/null && rc=0 || rc=$?
      echo "$(date +%T) ${names[$i]} (pid ${pids[$i]}) exited with status $rc; the rest keep serving. Last lines of $run/logs/${names[$i]}.log:"
      tail -3 "$run/logs/${names[$i]}.log" | sed 's/^/    /'
      reported[$i]=1
    fi
  done
  sleep 1 &
  wait $! || true
done
