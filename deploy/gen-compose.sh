#!/usr/bin/env bash
# Writes a docker-compose file (format 2.4, works with Debian's docker-compose 1.29)
# for N client trackers plus the OpenRouter simulator on a private network. Each client
# gets its own OpenRouter key, tokens, volume and the labels the console discovers
# (mai.client=<org id>, mai.role=tracker). Host ports are published on 127.0.0.1 only.
#   deploy/gen-compose.sh N [TAG] > compose.yml
# Secrets here are test values for the simulator; a real deployment passes them as
# Docker secrets (*_FILE variables) instead.
set -euo pipefail
n="${1:?usage: gen-compose.sh N [TAG]}"
tag="${2:-dev}"
cat <<YAML
version: "2.4"
networks:
  fleet:
    driver: bridge
    internal: false
volumes:
YAML
for i in $(seq 1 "$n"); do echo "  ledger-client$i: {}"; done
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
  key=$(printf 'sk-or-v1-%064x' "$((4096 + i))")
  cat <<YAML
  tracker-client$i:
    image: mai-tracker:$tag
    depends_on: [openrouter-sim]
    labels:
      mai.client: client$i
      mai.role: tracker
    environment:
      OPENROUTER_API_KEY: "$key"
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
