#!/usr/bin/env bash
# Installs what the environment needs from Debian when it is missing: the PostgreSQL server binaries.
# Needs root (as CI and the development machines have); prints what a non-root user must do otherwise.
set -euo pipefail
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "PostgreSQL server binaries are missing: run 'sudo apt-get install -y postgresql' (or set PG_BIN_DIR)" >&2
  exit 1
fi
echo "[deps] installing PostgreSQL from Debian" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends postgresql >&2
# The package starts a system cluster on port 5432; the project runs its own, so leave the system one off.
if command -v pg_ctlcluster >/dev/null; then
  for c in /etc/postgresql/*/main; do
    [ -d "$c" ] && pg_ctlcluster "$(basename "$(dirname "$c")")" main stop >/dev/null 2>&1 || true
  done
fi
