#!/usr/bin/env bash
# Builds the webcall-server image on a machine that cannot pull base images:
# the runtime base is made from Debian packages with debootstrap, the server
# binary is built on the host, and the Dockerfile's `prebuilt` stage puts
# them together. Then the image is started and checked: the health check
# passes and a room can be created through the container's port; then a
# second container with a self-signed certificate and TURN answers HTTPS,
# redirects plain HTTP, keeps its certificate across a restart (the data
# volume), and answers STUN on the mapped UDP port.
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

log "HTTPS (self-signed) and TURN in the image"
tls_port=$((port + 1))
turn_port=${WEBCALL_SMOKE_TURN_PORT:-13478}
volume=webcall-smoke-data-$$
start_tls() {
    podman run "${opts[@]}" -d --rm --name "$name-tls" -v "$volume:/var/lib/webcall" \
        -p "127.0.0.1:$tls_port:8000" -p "127.0.0.1:$turn_port:3478/udp" \
        -e WEBCALL_ICE_SERVERS='[]' -e WEBCALL_TLS_SELF_SIGNED=true \
        -e WEBCALL_TURN=true -e WEBCALL_TURN_PUBLIC_IP=127.0.0.1 -e WEBCALL_TURN_TLS_ON_HTTPS=true \
        "$image" >/dev/null
    for _ in $(seq 1 60); do
        curl -kfsS "https://127.0.0.1:$tls_port/healthz" >/dev/null 2>&1 && return
        sleep 0.5
    done
}
fingerprint() {
    openssl s_client -connect "127.0.0.1:$tls_port" </dev/null 2>/dev/null |
        openssl x509 -noout -fingerprint -sha256
}
trap 'podman stop -t 2 "$name" "$name-tls" >/dev/null 2>&1 || true; podman volume rm -f "$volume" >/dev/null 2>&1 || true; rm -rf "$context"' EXIT
start_tls
curl -kfsS "https://127.0.0.1:$tls_port/healthz"; echo
redirect=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$tls_port/")
echo "plain HTTP on the HTTPS port: $redirect"
[[ $redirect == 30[178]\ https://* ]]
first=$(fingerprint)
echo "certificate: $first"
podman stop -t 5 "$name-tls" >/dev/null
podman rm -f "$name-tls" >/dev/null 2>&1 || true
start_tls
second=$(fingerprint)
[[ -n $first && $first == "$second" ]] || { echo "the certificate changed across a restart: $second"; exit 1; }
echo "the same certificate after a restart"
if command -v turnutils_stunclient >/dev/null; then
    turnutils_stunclient -p "$turn_port" 127.0.0.1 | grep -i "reflexive"
fi
log "image $image works"
