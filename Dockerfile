# webcall-server in a small image: one process, non-root, state in a volume.
#
#   podman build -t webcall-server .        (or docker build)
#   podman run -p 8000:8000 webcall-server
#
# The deployment section of README.md shows a VPS set-up with HTTPS (ACME)
# and the built-in TURN server; compose.yaml runs it with the ports mapped.
#
# Base images are arguments so that an offline machine can build from a
# local base (contrib/container/build-local.sh makes one with debootstrap).
ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

# The runtime every variant shares: a system user, the data directory, the
# health check. No shell tools beyond the base image's bash are needed.
FROM ${RUNTIME_IMAGE} AS runtime-base
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/webcall --create-home webcall \
    && chmod 0700 /var/lib/webcall
ENV WEBCALL_LISTEN=0.0.0.0:8000 \
    WEBCALL_DATA_DIR=/var/lib/webcall \
    RUST_LOG=info
VOLUME ["/var/lib/webcall"]
# HTTP(S) on 8000 (map 443 to it in production); TURN on 3478 (UDP and TCP)
# and 5349 (TLS); relayed media on the range given by --turn-relay-ports.
EXPOSE 8000/tcp 3478/udp 3478/tcp 5349/tcp 49160-49200/udp
USER webcall
WORKDIR /var/lib/webcall
# Any HTTP answer on /healthz means the server is up: 200 over plain HTTP,
# or the redirect that a TLS port gives a plain-HTTP request.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["bash", "-c", "port=${WEBCALL_LISTEN##*:}; exec 3<>/dev/tcp/127.0.0.1/$port && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -c 12 <&3 | grep -qE '^HTTP/1\\.[01] (200|30[178])'"]
ENTRYPOINT ["/usr/local/bin/webcall-server"]

# A binary built outside the image (build-local.sh): the context holds only
# the file `webcall-server`.
FROM runtime-base AS prebuilt
COPY --chmod=0755 webcall-server /usr/local/bin/webcall-server

# The usual path: build the server from source. Only webcall-server is
# built, so none of the terminal client's media libraries are needed.
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p webcall-server \
    && install -m 0755 target/release/webcall-server /webcall-server

FROM runtime-base AS runtime
COPY --from=build /webcall-server /usr/local/bin/webcall-server
