#!/usr/bin/env bash
# Images for the fleet-update tests and benchmark, built on top of deploy/build-images.sh's
# tracker image (run that first with the same TAG), with no registry:
#   mai-chat-standin:TAG        a stand-in chat app FROM scratch (deploy/chat-standin/):
#                               answers /health like Open WebUI, with a HEALTHCHECK
#   mai-chat-standin:TAG-next   the same with another image id (an "update" of it)
#   mai-tracker:TAG-next        mai-tracker:TAG with another image id: an update that passes
#   mai-tracker:TAG-broken      a tracker that exits at once: an update whose canary fails
#                               its health gate (its entry point is the healthcheck, which
#                               finds nothing listening)
#   deploy/build-update-test-images.sh [--tracker-only] [TAG]      (default tag: dev)
# --tracker-only builds only the two tracker variants (mai-chat-standin:TAG, e.g. the
# lifecycle tests' own stand-in from deploy/build-images.sh, is left as it is).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tracker_only=0
if [ "${1:-}" = "--tracker-only" ]; then tracker_only=1; shift; fi
tag="${1:-dev}"
if ! docker image inspect "mai-tracker:$tag" >/dev/null 2>&1; then
  echo "build-update-test-images: no image mai-tracker:$tag; run deploy/build-images.sh $tag first" >&2
  exit 1
fi
tracker_variants() {
  printf 'FROM mai-tracker:%s\nLABEL mai.version="%s-next"\n' "$tag" "$tag" \
    | docker build -q -t "mai-tracker:$tag-next" - >/dev/null
  printf 'FROM mai-tracker:%s\nLABEL mai.version="%s-broken"\nENTRYPOINT ["/mai-tracker", "healthcheck"]\n' "$tag" "$tag" \
    | docker build -q -t "mai-tracker:$tag-broken" - >/dev/null
}
if [ "$tracker_only" = 1 ]; then
  tracker_variants
  for i in "mai-tracker:$tag-next" "mai-tracker:$tag-broken"; do
    echo "build-update-test-images: $i ($(docker image inspect -f '{{.Id}}' "$i" | cut -c1-19))"
  done
  exit 0
fi
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
rustc -O -C target-feature=+crt-static --edition 2021 "$here/chat-standin/main.rs" -o "$ctx/chat-standin"
if ldd "$ctx/chat-standin" 2>&1 | grep -q '=>'; then
  echo "build-update-test-images: chat-standin is dynamically linked; it cannot run FROM scratch" >&2
  exit 1
fi
cp "$here/chat-standin/Dockerfile" "$ctx/Dockerfile"
docker build -q -t "mai-chat-standin:$tag" "$ctx" >/dev/null
printf 'FROM mai-chat-standin:%s\nLABEL mai.version="%s-next"\n' "$tag" "$tag" \
  | docker build -q -t "mai-chat-standin:$tag-next" - >/dev/null
tracker_variants
for i in "mai-chat-standin:$tag" "mai-chat-standin:$tag-next" "mai-tracker:$tag-next" "mai-tracker:$tag-broken"; do
  echo "build-update-test-images: $i ($(docker image inspect -f '{{.Id}}' "$i" | cut -c1-19))"
done
