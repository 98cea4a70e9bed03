#!/usr/bin/env bash
# Build Dockerfile.cloud and run the image on a machine with no Docker engine: buildah and podman, daemonless
# (as root, vfs storage, chroot isolation). Where Docker Hub is out of reach, as on the CI machines, the base
# python:3.11-slim is stood in for by Debian bookworm (debootstrap, Debian's Python 3.11) under the same name,
# trusting this machine's CA bundle for pip. Then: the service starts as the image's user, serves /metrics
# (with its API token) and the dashboard, and the image's health check command (/healthz) passes.
#   sudo scripts/check-cloud-image.sh        (apt-installs buildah, podman, debootstrap, mosquitto)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/edgeloop-image}
STORE=(--storage-driver vfs)
BASE=docker.io/library/python:3.11-slim
mkdir -p "$WORK"
scripts/apt-install.sh buildah podman debootstrap mosquitto

if ! podman "${STORE[@]}" image exists "$BASE" && ! podman "${STORE[@]}" pull -q "$BASE" 2>/dev/null; then
    echo "no $BASE to pull: standing in Debian bookworm with its Python 3.11"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
        bookworm "$WORK/rootfs" http://deb.debian.org/debian
    cp /etc/ssl/certs/ca-certificates.crt "$WORK/rootfs/etc/ssl/certs/ca-certificates.crt"
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$WORK/rootfs/etc/pip.conf"
    rm -rf "$WORK"/rootfs/var/lib/apt/lists/* "$WORK"/rootfs/var/cache/apt/archives/*.deb
    tar -C "$WORK/rootfs" -c . | podman "${STORE[@]}" import - "$BASE"
fi

buildah "${STORE[@]}" bud --format docker --isolation chroot --network host --pull-never \
    -f Dockerfile.cloud -t edgeloop-cloud .
podman "${STORE[@]}" images edgeloop-cloud

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
MQTT_PORT=$(free_port)
HTTP_PORT=$(free_port)
CTR=$(buildah "${STORE[@]}" from edgeloop-cloud)
mosquitto -p "$MQTT_PORT" >"$WORK/mosquitto.log" 2>&1 &
BROKER=$!
TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
buildah "${STORE[@]}" run --isolation chroot --network host --env EDGELOOP_API_TOKEN="$TOKEN" "$CTR" -- \
    python -m cloud serve --http-host 0.0.0.0 --data-dir /data \
    --db sqlite:////data/edgeloop.db --http-port "$HTTP_PORT" --broker "mqtt://127.0.0.1:$MQTT_PORT" \
    >"$WORK/serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE $BROKER 2>/dev/null; buildah "${STORE[@]}" rm "$CTR" >/dev/null' EXIT

for _ in $(seq 60); do
    curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz" && break
    sleep 1
done
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$HTTP_PORT/metrics" | grep -q '^edgeloop_messages_in_total'
curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/"
buildah "${STORE[@]}" run --isolation chroot --network host "$CTR" -- sh -c "id -u; python -c \
    \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:$HTTP_PORT/healthz', timeout=4)\"" \
    | grep -qx 10001
echo "edgeloop-cloud: built; serves /metrics and the dashboard as uid 10001; health check command passes"
