#!/usr/bin/env bash
# Issue 35's GPU check in one `device` call of at most 6 minutes: bench_device_data.py pinned to
# two cores (a Colab runtime), DepthMaskNet and Session 15, 64 and 224 px, the host path, the device
# path, and a lazy dataset composited on the device; DepthMaskNet's step also through torch.compile.
#
#   here:        bash benchmarks/gpu_wheels.sh             # once: the wheels the GPU machine lacks
#   device run:  command "bash benchmarks/gpu_check.sh", carry [".whl"], timeout_s 420
#
# Rows come back in $OUT/bench_device_data_cuda.json (benchmarks/results/ elsewhere). On a CPU it
# runs too, smaller, as its test:  GPU_CHECK_ARGS="--sizes 32 --rooms 30 --models depthmasknet"
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1 TQDM_DISABLE=1
# the wheels only where the packages are missing (the GPU machine): here they are installed already
if ! $PY -c "import albumentations, pytorch_msssim, torchinfo" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null ||
  echo "no GPU: $(nproc) CPU cores"
# shellcheck disable=SC2086  # GPU_CHECK_ARGS is a list of arguments
$PY benchmarks/bench_device_data.py --cores 2 --lazy --compile depthmasknet ${GPU_CHECK_ARGS:-} \
  --out "${OUT:-benchmarks/results}/bench_device_data_$($PY -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")').json"
