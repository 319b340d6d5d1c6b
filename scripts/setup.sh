#!/usr/bin/env bash
# Installs everything the demo and the tests need on a Debian 12 / Ubuntu machine.
# Idempotent: installs only what is missing, so a second run takes seconds.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config file libssl-dev
  # Tauri 2 on Linux (WebKitGTK 4.1) and its WebDriver
  libwebkit2gtk-4.1-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev webkit2gtk-driver
  xvfb xauth dbus
  # keychain: a real Secret Service
  gnome-keyring libsecret-tools
  # page tests, invoice checks, updater signatures, fonts with Polish glyphs
  chromium libxml2-utils poppler-utils minisign fonts-dejavu-core
  # fleet: Docker engine, compose, SSH transport, a static busybox for images
  docker.io docker-compose openssh-server openssh-client busybox-static
  curl ca-certificates
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and Python may come from elsewhere (nodesource bundles npm, pyenv has venv):
# ask Debian only when the command itself is missing.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3 python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found. Install a Rust toolchain (1.90 or newer) first: https://rustup.rs" >&2
  exit 1
fi

# WebDriver bridge for the Tauri app (the end-to-end UI test).
if ! command -v tauri-driver >/dev/null 2>&1; then
  echo "setup: installing tauri-driver 2.1.0"
  cargo install tauri-driver --version 2.1.0 --locked --quiet
fi

# Frontend dependencies (versions from package-lock.json). `npm install`, not `npm ci`:
# with this machine's omit-lockfile-registry-resolved setting npm 11 leaves other
# platforms' optional packages out of the lock, and `npm ci` then refuses it.
if [ -f ui/package-lock.json ] && [ ! -d ui/node_modules ]; then
  (cd ui && npm install --no-audit --no-fund --loglevel=error)
fi
echo "setup: ok"
