#!/usr/bin/env bash
# The one installer: everything the demo, the tests and the benchmarks need on a Debian 12
# / Ubuntu machine. Every script that needs a package calls this first instead of
# installing anything itself. Idempotent: installs only what is missing, so a second run
# takes about a second.
#   scripts/setup.sh            Debian packages, tauri-driver, the UI's npm packages,
#                               the Python venv of the tests ($MAI_VENV: openai)
#   scripts/setup.sh litellm    also the LiteLLM proxy venv of deploy/bench/litellm-compare.sh
#                               ($HOME/.cache/mai-litellm; pip spec from LITELLM_VERSION)
#   scripts/setup.sh openwebui  also the real chat app, open-webui $OPENWEBUI_VERSION from
#                               PyPI, in $MAI_OPENWEBUI_VENV (about 7 GB: installed once,
#                               reused by every run; test.sh's end-to-end stage needs it)
#   scripts/setup.sh fuzz       also cargo-fuzz (tests/run-fuzz.sh; test.sh asks for it)
#   scripts/setup.sh deny       also cargo-deny (deny.toml; test.sh asks for it)
set -euo pipefail
. "$(dirname "$0")/env.sh"

PACKAGES=(
  build-essential pkg-config file libssl-dev
  # Tauri 2 on Linux (WebKitGTK 4.1) and its WebDriver
  libwebkit2gtk-4.1-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev webkit2gtk-driver
  xvfb xauth dbus
  # a real org.freedesktop.Notifications server for the console's alert notifications (e2e)
  dunst
  # keychain: a real Secret Service
  gnome-keyring libsecret-tools
  # page tests, invoice checks, updater signatures, fonts with Polish glyphs
  chromium libxml2-utils poppler-utils minisign fonts-dejavu-core
  # FA(3) schema check at run time (mai-billing: the libxml crate, bindings made by bindgen)
  libxml2-dev libclang-dev
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

# WebDriver bridge for the Tauri app (the end-to-end UI test). Built in cargo install's
# own temporary dir: it shares nothing with the workspace's target dir.
if ! command -v tauri-driver >/dev/null 2>&1; then
  echo "setup: installing tauri-driver 2.1.0"
  env -u CARGO_TARGET_DIR cargo install tauri-driver --version 2.1.0 --locked --quiet
fi

# Frontend dependencies, exactly as ui/package-lock.json pins them: `npm ci` when
# node_modules is missing or the lock changed since the last install (a stamp with the
# lock's hash). ui/.npmrc turns off this machine's omit-lockfile-registry-resolved: with it
# npm 11 wrote locks without other platforms' optional packages (@rollup/rollup-darwin-*
# ...), which `npm ci` refuses as out of sync. Regenerate the lock inside ui/ so that
# .npmrc applies (`npm install --package-lock-only`).
if [ -f "$MAI_ROOT/ui/package-lock.json" ]; then
  lock_sum="$(sha256sum "$MAI_ROOT/ui/package-lock.json" | cut -d' ' -f1)"
  stamp="$MAI_ROOT/ui/node_modules/.mai-lock-sha256"
  if [ ! -d "$MAI_ROOT/ui/node_modules" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
    echo "setup: npm ci in ui/"
    (cd "$MAI_ROOT/ui" && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s\n' "$lock_sum" >"$stamp"
  fi
fi

# A real client library (openai, PyPI) for the simulator's contract test.
if ! "$MAI_VENV/bin/python" -c 'import openai' >/dev/null 2>&1; then
  echo "setup: installing openai into $MAI_VENV"
  [ -x "$MAI_VENV/bin/python" ] || python3 -m venv "$MAI_VENV"
  "$MAI_VENV/bin/pip" install --quiet openai
fi

# A cargo-installed tool at a pinned version; skipped when that version answers.
cargo_tool() { # crate version
  if [ "$("$1" --version 2>/dev/null | awk '{print $2}')" != "$2" ]; then
    echo "setup: installing $1 $2"
    env -u CARGO_TARGET_DIR cargo install "$1" --version "$2" --locked --quiet
  fi
}
CARGO_FUZZ_VERSION=0.13.2
CARGO_DENY_VERSION=0.20.2

for extra in "$@"; do
  case "$extra" in
    litellm)
      # The LiteLLM proxy for the tracker-vs-LiteLLM benchmark (deploy/bench/).
      venv="$HOME/.cache/mai-litellm"
      if [ ! -x "$venv/bin/litellm" ]; then
        spec="${LITELLM_VERSION:-litellm[proxy]}"
        echo "setup: installing $spec into $venv"
        [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
        "$venv/bin/pip" install -q "$spec" aiohttp uvloop
      fi
      ;;
    openwebui)
      # The real Open WebUI (docs: ../shared/specs/openwebui.md), pinned: the tracker's
      # header handling was read in this version's source. A marker file says the
      # install finished, so an interrupted install is resumed, not trusted.
      venv="$MAI_OPENWEBUI_VENV"
      if [ ! -f "$venv/.installed-$OPENWEBUI_VERSION" ]; then
        echo "setup: installing open-webui==$OPENWEBUI_VERSION into $venv (about 7 GB, once)"
        [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
        "$venv/bin/pip" install -q "open-webui==$OPENWEBUI_VERSION"
        touch "$venv/.installed-$OPENWEBUI_VERSION"
      fi
      ;;
    fuzz)
      # cargo-fuzz for tests/run-fuzz.sh (which also says why it runs with
      # RUSTC_BOOTSTRAP=1 on the stable toolchain). Built in cargo install's own temp dir.
      cargo_tool cargo-fuzz "$CARGO_FUZZ_VERSION"
      ;;
    deny)
      # cargo-deny for the supply-chain stage (deny.toml: advisories, licenses, bans,
      # sources). A few minutes to build, once.
      cargo_tool cargo-deny "$CARGO_DENY_VERSION"
      ;;
    *) echo "setup: unknown component '$extra' (known: litellm, openwebui, fuzz, deny)" >&2; exit 2 ;;
  esac
done
echo "setup: ok"
