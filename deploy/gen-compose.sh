#!/usr/bin/env bash
# Writes a docker-compose file (format 2.4, works with Debian's docker-compose 1.29)
# for N client trackers plus the OpenRouter simulator on a private network. Each client
# gets its own OpenRouter key, tokens, volume and the labels the console discovers
# (mai.client=<org id>, mai.role=tracker). Host ports are published on 127.0.0.1 only.
#   deploy/gen-compose.sh N [TAG] [SECRETS_DIR] > compose.yml
#
# The OpenRouter key never goes into the environment (where `docker inspect`, crash
# reports and child processes see it): each tracker reads it from a file,
# OPENROUTER_API_KEY_FILE=/run/secrets/client<i>-openrouter-key, a compose secret that
# docker-compose bind-mounts read-only from SECRETS_DIR/client<i>.openrouter-key
# (default ./secrets, relative to the compose file). The tracker runs as uid 10001
# (deploy/Dockerfile.tracker), so on the host each key file is mode 0400 owned by 10001:
#   install -m 0400 -o 10001 -g 10001 /dev/stdin secrets/client1.openrouter-key
# When SECRETS_DIR is given, missing key files are written there with the simulator's
# test keys (what the tests and the demo use). The tokens below are test values too; a
# real deployment passes them as secrets the same way (every secret has a *_FILE form).
set -euo pipefail
n="${1:?usage: gen-compose.sh N [TAG] [SECRETS_DIR]}"
tag="${2:-dev}"
secrets="${3:-./secrets}"
uid=10001

if [ -n "${3:-}" ]; then
  mkdir -p "$secrets"
  for i in $(seq 1 "$n"); do
    f="$secrets/client$i.openrouter-key"
    [ -e "$f" ] && continue
    (umask 077; printf 'sk-or-v1-%064x\n' "$((4096 + i))" >"$f")
    chmod 0400 "$f"
    if ! chown "$uid:$uid" "$f" 2>/dev/null; then
      # Not root: the container's uid could not read a 0400 file we own.
      chmod 0444 "$f"
      echo "gen-compose: $f is world-readable (test key; run as root to give it to uid $uid)" >&2
    fi
  done
fi

cat <<YAML
version: "2.4"
networks:
  fleet:
    driver: bridge
    internal: false
volumes:
YAML
for i in $(seq 1 "$n"); do echo "  ledger-client$i: {}"; done
echo "secrets:"
for i in $(seq 1 "$n"); do
  cat <<YAML
  client$i-openrouter-key:
    file: $secrets/client$i.openrouter-key
YAML
done
cat <<YAML
services:
  openrouter-sim:
    image: mai-sim:$tag
    command: ["--generation-ready-delay", "200", "--keepalive-leading", "1", "--first-token-delay-ms", "5", "--chunk-interval-ms", "5"]
    labels:
      mai.role: openrouter-sim
    networks: [fleet]
    ports: ["127.0.0.1::8090"]
YAML
for i in $(seq 1 "$n"); do
  cat <<YAML
  tracker-client$i:
    image: mai-tracker:$tag
    depends_on: [openrouter-sim]
    labels:
      mai.client: client$i
      mai.role: tracker
    secrets: [client$i-openrouter-key]
    environment:
      OPENROUTER_API_KEY_FILE: /run/secrets/client$i-openrouter-key
      OPENROUTER_BASE_URL: http://openrouter-sim:8090/api/v1
      MAI_ORG_ID: client$i
      MAI_ORG_NAME: "Client $i Sp. z o.o."
      MAI_TRACKER_PROXY_TOKEN: proxy-token-client$i-000000
      MAI_TRACKER_READ_TOKEN: read-token-client$i-0000000
      MAI_TRACKER_ADMIN_TOKEN: admin-token-client$i-000000
      # Plain HTTP: the port is published on 127.0.0.1 only (the image's default,
      # MAI_TRACKER_TLS=auto, serves HTTPS on 0.0.0.0; see crates/mai-tracker/README.md).
      MAI_TRACKER_TLS: "off"
      OPENROUTER_USAGE_SYNC_INTERVAL: "30"
      RUST_LOG: info
    volumes: ["ledger-client$i:/data"]
    networks: [fleet]
    ports: ["127.0.0.1::8080"]
    restart: unless-stopped
YAML
done
