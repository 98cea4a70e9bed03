#!/usr/bin/env bash
# The edge on arm64 without a Jetson: an arm64 image of the device runtime, built with buildah and run under
# qemu-user emulation (binfmt_misc), on Debian bookworm arm64 standing in for L4T (as check-cloud-image.sh stands
# in for Docker Hub). Docker Hub is out of reach on the CI machines, so the base is debootstrapped (--foreign,
# then its second stage under qemu-aarch64-static) and imported with `buildah from scratch`. Only PyPI's aarch64
# wheels are installed (--only-binary): compiling under emulation would take hours. Inside the image:
# `edge classify` with the tflite and onnx backends on the test images (the labels must be the x86 host's), and
# `edge run` on a short video against a Mosquitto on the host, whose predictions must all arrive.
# The onnx backend is reported as missing, not failed, where this checkout has none (edge/backends/onnx.py).
#   scripts/check-arm64.sh      (as root; apt-installs buildah, debootstrap, qemu-user-static, binfmt-support,
#                                mosquitto; WORK=/tmp/edgeloop-arm64 keeps the base and the image between runs)
# Timings (docs/deploy.md): per phase in $WORK/timings.txt. Here (a busy 2-core x86 machine): the base once,
# about 24 min (debootstrap's second stage under emulation); the image 5-8 min (pip under emulation); then the
# data, the classifications and the run, under 2 min.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/edgeloop-arm64}
PY=${PYTHON:-.venv/bin/python}
STORE=(--storage-driver vfs)
RUN=(--isolation chroot --network host)
BASE=localhost/edgeloop-bookworm-arm64
IMAGE=localhost/edgeloop-edge-arm64
# Releases that run under Debian bookworm's qemu-user (7.2): LiteRT 2.x dies creating its interpreter and ONNX
# Runtime 1.28 and later on import ("qemu: uncaught target signal 11"), in their look at the CPU it seems; LiteRT
# 1.2.0 and ONNX Runtime 1.23.0 (the release Dockerfile.jetson installs on JetPack 6) and 1.25.1 do not.
PINS="ai-edge-litert==1.2.0 onnxruntime==1.23.0"
mkdir -p "$WORK/data"
: >"$WORK/timings.txt"
phase() { # phase NAME COMMAND...: run it, record its seconds
    local name=$1 start=$SECONDS
    shift
    "$@"
    echo "$name $((SECONDS - start)) s" | tee -a "$WORK/timings.txt"
}
scripts/apt-install.sh buildah debootstrap qemu-user-static binfmt-support mosquitto mosquitto-clients openssl
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    update-binfmts --enable qemu-aarch64 || {
        echo "check-arm64: binfmt_misc has no qemu-aarch64 entry and update-binfmts cannot add one" >&2
        exit 1
    }
fi

base() {
    rm -rf "$WORK/rootfs"
    debootstrap --arch arm64 --foreign --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$WORK/rootfs" http://deb.debian.org/debian
    cp /usr/bin/qemu-aarch64-static "$WORK/rootfs/usr/bin/"
    chroot "$WORK/rootfs" /debootstrap/debootstrap --second-stage
    cp /etc/ssl/certs/ca-certificates.crt "$WORK/rootfs/etc/ssl/certs/ca-certificates.crt"
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$WORK/rootfs/etc/pip.conf"
    rm -rf "$WORK"/rootfs/var/lib/apt/lists/* "$WORK"/rootfs/var/cache/apt/archives/*.deb
    local ctr
    ctr=$(buildah "${STORE[@]}" from scratch)
    buildah "${STORE[@]}" copy "$ctr" "$WORK/rootfs" / >/dev/null
    buildah "${STORE[@]}" config --arch arm64 --os linux "$ctr"
    buildah "${STORE[@]}" commit -q "$ctr" "$BASE" >/dev/null
    buildah "${STORE[@]}" rm "$ctr" >/dev/null
    rm -rf "$WORK/rootfs"
}

image() {
    local ctr
    ctr=$(buildah "${STORE[@]}" from --pull-never "$BASE")
    buildah "${STORE[@]}" copy "$ctr" pyproject.toml README.md /src/ >/dev/null
    buildah "${STORE[@]}" copy "$ctr" common /src/common >/dev/null
    buildah "${STORE[@]}" copy "$ctr" edge /src/edge >/dev/null
    buildah "${STORE[@]}" run "${RUN[@]}" --env "PINS=$PINS" "$ctr" -- sh -c 'python3 -m venv /opt/edgeloop/venv \
        && /opt/edgeloop/venv/bin/pip install --quiet --no-cache-dir --only-binary :all: "/src[edge,onnx]" $PINS \
        && /opt/edgeloop/venv/bin/python -m edge --help >/dev/null'
    buildah "${STORE[@]}" config --env PATH=/opt/edgeloop/venv/bin:/usr/bin:/bin --workingdir /src \
        --label "edgeloop.sources=$SOURCES" "$ctr"
    buildah "${STORE[@]}" commit -q "$ctr" "$IMAGE" >/dev/null
    buildah "${STORE[@]}" rm "$ctr" >/dev/null
}

# On the host: labelled images, a bundle trained as the tests' tiny one, a short video, a registry key. The images
# are the model's input size (128): OpenCV's bilinear resize rounds differently on arm64 and x86, and this random-
# weights network turns those one-level differences into other labels; decoding and inference are bit-identical.
data() {
    rm -rf "$WORK/data" && mkdir -p "$WORK/data"
    "$PY" -c "import sys; import numpy as np; from pathlib import Path; from tests.support import data; \
out = Path(sys.argv[1]); rng = np.random.default_rng(0); \
[(out / 'images' / label).mkdir(parents=True, exist_ok=True) for label in data.COLOURS]; \
[data.write_jpeg(out / 'images' / label / f'{label}_{i:03d}.jpg', data.synthetic_image(label, rng, size=128)) \
for label in data.COLOURS for i in range(20)]; \
data.write_video(out / 'video.avi', frames=30); rng = np.random.default_rng(99); \
sample = np.stack([data.synthetic_image(label, rng) for label in data.COLOURS for _ in range(12)]); \
data.calibrated_weights(data.TINY_ARCHITECTURE, sample, out / 'base.weights.h5')" "$WORK/data"
    "$PY" -m cloud retrain --image-dir "$WORK/data/images" --output-dir "$WORK/data/bundle" \
        --architecture mobilenet_0.25_128 --weights "$WORK/data/base.weights.h5" --how-many-training-steps 150 \
        --learning-rate 0.2 --train-batch-size 32 --bottleneck-dir "$WORK/data/bottlenecks" >/dev/null
    openssl genpkey -algorithm ed25519 | openssl pkey -pubout -out "$WORK/data/registry.pub"
}

# The base is kept between runs; the image too, while the sources and the steps it was built from are the same.
SOURCES=$({ tar -c --sort=name --mtime=@0 --owner=0 --group=0 --exclude=__pycache__ pyproject.toml README.md \
    common edge; declare -f image; } | sha256sum | cut -c1-16)
if ! buildah "${STORE[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then phase base base; fi
BUILT=$(buildah "${STORE[@]}" inspect --type image --format '{{index .OCIv1.Config.Labels "edgeloop.sources"}}' \
    "$IMAGE" 2>/dev/null || true)
if [ "$BUILT" != "$SOURCES" ]; then
    phase image image
fi
phase data data
CTR=$(buildah "${STORE[@]}" from --pull-never "$IMAGE")
BROKER= SUB=
trap 'kill $SUB $BROKER 2>/dev/null || true; buildah "${STORE[@]}" rm "$CTR" >/dev/null' EXIT
in_image() { buildah "${STORE[@]}" run "${RUN[@]}" -v "$WORK/data:/data" "$CTR" -- "$@"; }
in_image python -c "import platform; assert platform.machine() == 'aarch64', platform.machine()"

# The labels of the test images, by the host's tflite backend, then by each backend in the image.
"$PY" -c "import sys; from common import bundle; print('\n'.join('/data/images/' + r['file'] for r in \
bundle.evaluation(bundle.load(sys.argv[1]))))" "$WORK/data/bundle" >"$WORK/data/test-images.txt"
labels() { python3 -c "import json, sys; print(' '.join(json.loads(l)['top_k'][0]['label'] for l in sys.stdin))"; }
mapfile -t TEST_IMAGES <"$WORK/data/test-images.txt"
HOST=$("$PY" -m edge classify --model "$WORK/data/bundle" --backend tflite --json \
    "${TEST_IMAGES[@]/#\/data/$WORK/data}" | labels)
for backend in tflite onnx; do
    if ! in_image python -c "import sys; from edge import backends; sys.exit('$backend' not in backends.REGISTRY)" \
        2>/dev/null; then
        echo "classify $backend: MISSING (no $backend backend in this checkout: edge/backends/$backend.py)" \
            | tee -a "$WORK/timings.txt"
        continue
    fi
    start=$SECONDS
    ARM=$(in_image python -m edge classify --model /data/bundle --backend "$backend" --json "${TEST_IMAGES[@]}" \
        | labels)
    [ "$ARM" = "$HOST" ] || { echo "classify $backend: arm64 labels differ from x86 tflite's" >&2; exit 1; }
    echo "classify $backend ${#TEST_IMAGES[@]} images $((SECONDS - start)) s, labels as on x86" \
        | tee -a "$WORK/timings.txt"
done

# `edge run` on the video (looped: capture keeps the newest frames only, and emulation is slow) for 30 frames,
# against Mosquitto on the host: each of the 30 predictions arrives.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mosquitto -p "$PORT" >"$WORK/mosquitto.log" 2>&1 &
BROKER=$!
for _ in $(seq 50); do # connected, then timed out waiting for a message (27): the broker is up
    rc=0
    mosquitto_sub -p "$PORT" -t x -W 1 -C 1 2>/dev/null || rc=$?
    [ "$rc" -eq 27 ] && break
    sleep 0.2
done
mosquitto_sub -p "$PORT" -t 'edgeloop/devices/arm64-1/predictions' -v >"$WORK/predictions.txt" &
SUB=$!
start=$SECONDS
in_image python -m edge run --model /data/bundle --source /data/video.avi --broker "mqtt://127.0.0.1:$PORT" \
    --device-id arm64-1 --trusted-key /data/registry.pub --state-dir /tmp/state --backend tflite \
    --loop --max-frames 30 --batch-max-delay-ms 50
sleep 1
kill "$SUB"
COUNT=$(python3 -c "import json, sys; print(sum(len(json.loads(l.split(' ', 1)[1]).get('predictions', [1])) \
for l in open(sys.argv[1])))" "$WORK/predictions.txt")
echo "edge run 30 frames $((SECONDS - start)) s, $COUNT predictions received" | tee -a "$WORK/timings.txt"
[ "$COUNT" -eq 30 ] || { echo "edge run: $COUNT predictions of 30 arrived" >&2; exit 1; }
echo "check-arm64: passed"
cat "$WORK/timings.txt"
