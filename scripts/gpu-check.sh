#!/usr/bin/env bash
# The GPU path in one command, on a machine with an NVIDIA GPU (x86 or a Jetson): the tf backend on the GPU,
# the onnx backend and ONNX Runtime's TensorRT and CUDA providers, TF-TRT where TensorFlow still has it,
# `edge bench` per backend at batch 1 and 8, and `cloud sweep --device cpu,gpu` on the flower photos
# (Inception v3 too when its Keras weights are in ../shared/weights/keras). One JSON report, its path printed,
# a copy in $OUT when set. Sized for under eight minutes on a datacenter GPU once the venv is installed (60
# photos per label, 30 training steps, 200 bench frames); not yet timed on one.
#   scripts/gpu-check.sh                  # a venv in $WORK/venv: tensorflow[and-cuda], onnxruntime-gpu from PyPI
#   GPU_CHECK_PYTHON=/opt/edgeloop/venv/bin/python scripts/gpu-check.sh   # use that Python as it is (a Jetson
#                                         # image, an offline machine): nothing is installed
#   GPU_CHECK_BUNDLE=/opt/edgeloop/bundle ...   # no sweep (a device image has no cloud code): that flowers bundle
# Without a GPU it exits 3 at once, says why, and still writes the report.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/edgeloop-gpu-check}
REPORT=${REPORT:-$WORK/gpu-report.json}
mkdir -p "$WORK"

python3 scripts/gpu_report.py probe --report "$REPORT" || exit $?

PY=${GPU_CHECK_PYTHON:-}
if [ -z "$PY" ]; then
    # TensorFlow's CUDA build and ONNX Runtime's GPU build (CUDA 12; TensorRT 10 from the tensorrt-cu12 wheels).
    # Each replaces the CPU build the cloud extra brings, which installs the same module (as Dockerfile.cloud does).
    python3 -m venv "$WORK/venv"
    PY=$WORK/venv/bin/python
    start=$(date +%s)
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet -e '.[edge,cloud]'
    "$PY" -m pip uninstall --quiet -y tensorflow-cpu onnxruntime
    "$PY" -m pip install --quiet -e '.[gpu]' onnxruntime-gpu tensorrt-cu12
    echo "gpu-check: venv installed in $(($(date +%s) - start)) s"
fi
# ONNX Runtime's CUDA and TensorRT providers load their libraries by name: those the pip wheels carry.
LIBS=$("$PY" -c "import glob, site; print(':'.join(sorted({p.rsplit('/', 1)[0] for s in site.getsitepackages() \
for p in glob.glob(s + '/nvidia/*/lib/*.so*') + glob.glob(s + '/tensorrt_libs/*.so*')})))")
export LD_LIBRARY_PATH=${LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export TF_CPP_MIN_LOG_LEVEL=2
"$PY" scripts/gpu_report.py run --report "$REPORT" --work "$WORK" ${GPU_CHECK_BUNDLE:+--bundle "$GPU_CHECK_BUNDLE"}
