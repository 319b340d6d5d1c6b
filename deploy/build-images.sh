#!/usr/bin/env bash
# Builds the mai-tracker, mai-sim and mai-chat-standin images from this checkout, with no
# registry (mai-chat-standin stands in for Open WebUI in the onboarding tests):
# static glibc binaries (crt-static, see shared tooling notes 5.4) copied into
# FROM-scratch images. Starts a Docker engine first if none answers.
#   deploy/build-images.sh [TAG]        (default tag: dev)
# MAI_IMAGE_PROFILE picks the Cargo profile: `release` (default, what ships: fat LTO, see
# Cargo.toml) or `image-test` (test.sh's test images: release semantics, no LTO, built in
# a fraction of the time).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
tag="${1:-dev}"
profile="${MAI_IMAGE_PROFILE:-release}"
. "$root/scripts/env.sh"

"$root/scripts/setup.sh" >/dev/null
"$root/scripts/ensure-docker.sh"

echo "build-images: compiling static binaries ($profile, x86_64-unknown-linux-gnu, crt-static)"
(cd "$root" && RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --profile "$profile" --locked --target x86_64-unknown-linux-gnu -p mai-tracker -p mai-sim)
bin="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/$profile"
for b in mai-tracker mai-sim mai-chat-standin; do
  if ldd "$bin/$b" 2>&1 | grep -q '=>'; then
    echo "build-images: $bin/$b is dynamically linked; it cannot run FROM scratch" >&2
    exit 1
  fi
done

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
build() { # name binary dockerfile
  rm -rf "${ctx:?}"/*
  cp "$bin/$2" "$ctx/$2"
  cp "$here/$3" "$ctx/Dockerfile"
  mkdir "$ctx/data"   # the tracker's /data, owned by its non-root user (Dockerfile.tracker)
  docker build -q -t "$1:$tag" "$ctx" >/dev/null
  echo "build-images: $1:$tag ($(docker image inspect -f '{{.Size}}' "$1:$tag") bytes)"
}
build mai-tracker mai-tracker Dockerfile.tracker
build mai-sim mai-sim Dockerfile.sim
build mai-chat-standin mai-chat-standin Dockerfile.chat-standin
