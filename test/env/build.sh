#!/usr/bin/env bash
# Builds, once, the binaries of the local test control plane from the Go module proxy and caches them
# outside the checkout, keyed by version. Prints the cache directory on stdout. Safe to run concurrently
# (flock) and idempotent: a second run with everything cached returns at once.
#   build.sh           build what is missing, print the folder
#   build.sh --cached  build nothing: print the folder and exit 0 if everything is built, exit 3 otherwise
#                      (test/envtest asks this, to skip cluster tests instead of starting a 20-minute build)
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}

cache_root=${UCLOUD_IM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ucloud-im-knative}
bin=$cache_root/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION
src=$cache_root/src
mkdir -p "$bin" "$src"

log() { printf '[build] %s\n' "$*" >&2; }

all=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)
missing() { for b in "${all[@]}"; do [ -x "$bin/$b" ] || return 0; done; return 1; }

if ! missing; then echo "$bin"; exit 0; fi
if [ "${1:-}" = --cached ]; then exit 3; fi

exec 9>"$cache_root/build.lock"
flock 9
if ! missing; then echo "$bin"; exit 0; fi

export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
start=$(date +%s)

# --- kubernetes: a wrapper module replacing every staging module k8s.io/kubernetes names at v0.0.0
k8s_minor=${K8S_VERSION#v1.}; staging_version=v0.$k8s_minor
kdir=$src/kubernetes-$K8S_VERSION
if [ ! -x "$bin/kube-apiserver" ] || [ ! -x "$bin/kube-controller-manager" ] || [ ! -x "$bin/kube-scheduler" ]; then
  mkdir -p "$kdir"
  if [ ! -f "$kdir/.ready" ]; then
    log "preparing wrapper module for k8s.io/kubernetes $K8S_VERSION"
    kmod=$(cd "$kdir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    staging=$(awk '/^require|^\t/ {print}' "$kmod" | grep -oE 'k8s\.io/[a-z0-9-]+ v0\.0\.0( |$)' | awk '{print $1}' | sort -u)
    {
      echo "module ucloud-im-knative/envbuild/kubernetes"
      echo
      echo "go 1.26"
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      for m in $staging; do echo "replace $m => $m $staging_version"; done
    } >"$kdir/go.mod"
    cat >"$kdir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
    (cd "$kdir" && go mod tidy -e >&2)
    touch "$kdir/.ready"
  fi
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${k8s_minor%%.*} -X k8s.io/component-base/version.gitTreeState=clean"
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    [ -x "$bin/$b" ] && continue
    log "building $b $K8S_VERSION (the first one takes ~15 min on 2 cores)"
    t=$(date +%s)
    (cd "$kdir" && go build -tags tools -ldflags "$ldflags" -o "$bin/$b.tmp" "k8s.io/kubernetes/cmd/$b")
    mv "$bin/$b.tmp" "$bin/$b"
    log "built $b in $(( $(date +%s) - t )) s"
  done
fi

# --- etcd
if [ ! -x "$bin/etcd" ]; then
  edir=$src/etcd-$ETCD_VERSION; mkdir -p "$edir"
  printf 'module ucloud-im-knative/envbuild/etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$edir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$edir/tools.go"
  log "building etcd $ETCD_VERSION"
  (cd "$edir" && go mod tidy -e >&2 && go build -tags tools -ldflags "-s -w" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$bin/etcd.tmp" "$bin/etcd"
fi

# --- kwok
if [ ! -x "$bin/kwok" ]; then
  wdir=$src/kwok-$KWOK_VERSION; mkdir -p "$wdir"
  printf 'module ucloud-im-knative/envbuild/kwok\n\ngo 1.26\n\nrequire sigs.k8s.io/kwok %s\n' "$KWOK_VERSION" >"$wdir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/kwok/cmd/kwok"\n' >"$wdir/tools.go"
  log "building kwok $KWOK_VERSION"
  (cd "$wdir" && go mod tidy -e >&2 && go build -tags tools -ldflags "-s -w" -o "$bin/kwok.tmp" sigs.k8s.io/kwok/cmd/kwok)
  mv "$bin/kwok.tmp" "$bin/kwok"
fi

log "all binaries cached in $bin ($(( $(date +%s) - start )) s)"
echo "$bin"
