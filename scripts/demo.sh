#!/usr/bin/env bash
# The demo as far as it goes today: retrain on the flower photos, then classify held-out photos
# with the bundle on both backends. DATA and WEIGHTS point it at local copies (offline).
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
  --output-dir "$out/flowers" --bottleneck-dir "$out/bottlenecks" --summaries-dir "$out/tensorboard"

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
port=$(.venv/bin/python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
mosquitto -p "$port" >/dev/null 2>&1 &
broker=$!
trap 'kill $broker $sub 2>/dev/null' EXIT
sleep 0.5
mosquitto_sub -p "$port" -V mqttv5 -t 'edgeloop/devices/+/predictions' -C 5 -v &
sub=$!
echo "== python -m edge run (broker mqtt://127.0.0.1:$port)"
.venv/bin/python -m edge run --source "$out/held-out.avi" --model "$out/flowers" --broker "mqtt://127.0.0.1:$port" \
  --device-id demo-cam --state-dir "$out/state" --telemetry-interval-s 2
wait $sub || true
echo
echo "bundle: $out/flowers   TensorBoard: .venv/bin/tensorboard --logdir $out/tensorboard"
