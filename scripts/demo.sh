#!/usr/bin/env bash
# The demo: retrain on the flower photos, classify held-out photos on both backends, then the loop
# live: a broker, the cloud service (dashboard, labelling, registry) and a device on a video of the
# held-out photos, until Ctrl-C (or DURATION seconds). DATA and WEIGHTS point it at local copies
# (offline); HTTP_PORT fixes the dashboard's port.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-demo-output}
data=${DATA:-}
weights=${WEIGHTS:-}
arch=${ARCH:-mobilenet_0.25_224}
if [ -z "$data" ] && [ -d ../shared/data/flower_photos ]; then
  data=../shared/data/flower_photos
  weights=${weights:-../shared/weights/keras/mobilenet_2_5_224_tf_no_top.h5}
fi
if [ -z "$data" ]; then
  mkdir -p "$out/download"
  if [ ! -d "$out/download/flower_photos" ]; then
    echo "downloading flower_photos (218 MB) ..."
    curl -fsSL https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz \
      | tar -xz -C "$out/download"
  fi
  data=$out/download/flower_photos
fi
weights=${weights:-imagenet}

.venv/bin/python -m cloud retrain --image-dir "$data" --architecture "$arch" --weights "$weights" \
  --output-dir "$out/flowers" --name flowers --bottleneck-dir "$out/bottlenecks" --summaries-dir "$out/tensorboard"

# A few of the held-out test images, classified the label_image way with each backend.
mapfile -t held_out < <(.venv/bin/python -c "
import json, sys
for row in json.load(open('$out/flowers/evaluation.json'))[:3]:
    print('$data/' + row['file'])
")
for backend in tflite tf; do
  echo "== python -m edge classify --backend $backend"
  .venv/bin/python -m edge classify --model "$out/flowers" --backend "$backend" --top-k 3 "${held_out[@]}"
done
# The device: a video of the held-out photos, classified frame by frame and published to a local broker.
.venv/bin/python - "$out" "$data" <<'PY'
import json, sys
import cv2
out, data = sys.argv[1], sys.argv[2]
writer = cv2.VideoWriter(f"{out}/held-out.avi", cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
for row in json.load(open(f"{out}/flowers/evaluation.json")):
    frame = cv2.resize(cv2.imread(f"{data}/{row['file']}"), (640, 480))
    for _ in range(5):
        writer.write(frame)
writer.release()
PY
free_port() { .venv/bin/python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
port=$(free_port)
http=${HTTP_PORT:-$(free_port)}
source scripts/processes.sh
trap stop_all EXIT
trap 'exit 130' INT TERM
start mosquitto -p "$port" >"$out/mosquitto.log" 2>&1
sleep 0.5

# The cloud: its dataset (labels given in the dashboard join it), the service, the bundle registered and announced,
# signed with the registry's private key; the device trusts only its public key and downloads only from the service.
cloud=$out/cloud
keys=$out/keys
[ -f "$keys/registry.key" ] || .venv/bin/python -m cloud keygen "$keys/registry.key" "$keys/registry.pub"
mkdir -p "$cloud/datasets"
[ -d "$cloud/datasets/flowers" ] || cp -r --no-preserve=mode "$data" "$cloud/datasets/flowers"
printf 'architecture: %s\nweights: %s\n' "$arch" "$weights" >"$cloud/datasets/flowers/retrain.yaml"
where=(--broker "mqtt://127.0.0.1:$port" --db "sqlite:///$cloud/edgeloop.db" --data-dir "$cloud"
       --public-url "http://127.0.0.1:$http" --signing-key "$keys/registry.key")
# The API's token, made for this run: the dashboard and every API call give it.
token=${EDGELOOP_API_TOKEN:-$(.venv/bin/python -c "import secrets; print(secrets.token_hex(32))")}
EDGELOOP_API_TOKEN=$token start .venv/bin/python -m cloud serve "${where[@]}" --http-port "$http" --http-host 127.0.0.1 \
  --no-train-new-models >"$out/cloud.log" 2>&1
version=$(.venv/bin/python -c "import json; print(json.load(open('$out/flowers/model.json'))['version'])")
if ! .venv/bin/python -m cloud models list flowers "${where[@]:2:4}" | grep -q "$version"; then
  .venv/bin/python -m cloud models add "$out/flowers" --promote "${where[@]}"
fi

# The device: a video of the held-out photos; unsure frames go to the cloud as samples to label.
start .venv/bin/python -m edge run --source "$out/held-out.avi" --model "$out/flowers" --broker "mqtt://127.0.0.1:$port" \
  --device-id demo-cam --state-dir "$out/state" --telemetry-interval-s 2 --loop --sample-threshold 0.6 \
  --trusted-key "$keys/registry.pub" --model-origin "http://127.0.0.1:$http" >"$out/edge.log" 2>&1
echo
echo "dashboard: http://127.0.0.1:$http/#token=$token"
echo "  (the page keeps the token for its tab and drops it from the address; the API takes it as"
echo "   curl -H 'Authorization: Bearer $token' http://127.0.0.1:$http/api/devices)"
echo "logs in $out/*.log; Ctrl-C stops the device, the service and the broker (within 5 s)"
echo "bundle: $out/flowers   TensorBoard: .venv/bin/tensorboard --logdir $out/tensorboard"
if [ -n "${DURATION:-}" ]; then sleep "$DURATION"; else wait "${pids[@]}"; fi
