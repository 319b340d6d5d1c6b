#!/usr/bin/env bash
# Makes sure a Docker Engine answers on /var/run/docker.sock: starts dockerd (as root)
# when no engine answers. Installs nothing (scripts/setup.sh installs docker.io).
# Idempotent; safe to call from every test script.
set -euo pipefail
if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-docker: no dockerd; run scripts/setup.sh first (it installs docker.io)" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-docker: no Docker engine answers and we are not root; start dockerd yourself" >&2
  exit 1
fi
log=/var/log/mai-dockerd.log
# No iptables in this sandbox; the userland proxy publishes ports instead.
nohup dockerd --iptables=false --ip-masq=false >"$log" 2>&1 &
for _ in $(seq 1 120); do
  if docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    echo "ensure-docker: dockerd $(docker version --format '{{.Server.Version}}') is up"
    exit 0
  fi
  sleep 0.5
done
echo "ensure-docker: dockerd did not come up; last lines of $log:" >&2
tail -20 "$log" >&2
exit 1
