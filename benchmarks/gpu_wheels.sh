#!/usr/bin/env bash
# The wheels the GPU machine lacks (it has torch, numpy, scipy, OpenCV, Pillow, tqdm, matplotlib,
# tensorboard; nothing can be fetched there), downloaded here into .whl/ (git-ignored) for Python
# 3.12 on x86-64 Linux. benchmarks/gpu_check.sh installs them there. About 10 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
rm -rf .whl && mkdir .whl
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl albumentations==2.0.8 albucore==0.0.24 pydantic==2.14.4 pydantic-core==2.50.5 \
  annotated-types==0.8.0 typing-inspection==0.4.5 simsimd==6.5.16 stringzilla==5.3.2 \
  torchinfo==1.8.0 pytorch-msssim==1.0.0
ls -la .whl
