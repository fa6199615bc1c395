#!/usr/bin/env bash
# Builds the webcall-server image on a machine that cannot pull base images:
# the runtime base is made from Debian packages with debootstrap, the server
# binary is built on the host, and the Dockerfile's `prebuilt` stage puts
# them together. Then the image is started and checked: the health check
# passes and a room can be created through the container's port.
#
#   contrib/container/build-local.sh [IMAGE]     (default: localhost/webcall-server)
#
# Needs root, podman (or buildah), debootstrap and a Debian mirror.
set -euo pipefail
cd "$(dirname "$0")/../.."

image=${1:-localhost/webcall-server}
base=localhost/debian-minbase:bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf '\n== %s\n' "$*"; }

if ! podman image exists "$base"; then
    log "making the runtime base $base with debootstrap"
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
    rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
    tar -C "$rootfs" -c . | podman import - "$base" >/dev/null
fi

# Limits the runtime may set inside this machine's own limits, and runc
# where it is installed (crun refuses hosts with hybrid cgroups).
opts=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=4096:4096")
if command -v runc >/dev/null; then
    opts+=(--runtime runc)
fi

log "building webcall-server (release)"
cargo build --release --locked -p webcall-server
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp target/release/webcall-server "$context/"

log "building $image"
podman build "${opts[@]}" --format docker --target prebuilt --build-arg RUNTIME_IMAGE="$base" \
    -f Dockerfile -t "$image" "$context"
podman image ls "$image"

log "starting it"
port=${WEBCALL_SMOKE_PORT:-18080}
name=webcall-smoke-$$
podman run "${opts[@]}" -d --rm --name "$name" -p "127.0.0.1:$port:8000" \
    -e WEBCALL_ICE_SERVERS='[]' "$image" >/dev/null
trap 'podman stop -t 2 "$name" >/dev/null 2>&1 || true; rm -rf "$context"' EXIT
for _ in $(seq 1 60); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/healthz"; echo
curl -fsS -X POST "http://127.0.0.1:$port/api/rooms"; echo
podman "${opts[@]:4}" healthcheck run "$name"
echo "health check: healthy"
podman "${opts[@]:4}" exec "$name" id
log "image $image works"
