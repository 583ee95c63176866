#!/usr/bin/env bash
# Installs what qtools needs on a fresh Debian machine (idempotent, quick when already done):
#   - system libraries: OpenBLAS (GEMM), zlib (deflate), libjpeg-turbo and libpng (ImageNet
#     images) development packages;
#   - with --python: a virtualenv outside the checkout (~/.cache/qtools-venv, or $QTOOLS_VENV)
#     holding torch, numpy, safetensors, onnx, onnxruntime and Pillow for the interop tests.
set -euo pipefail

missing=()
for pkg in libopenblas-dev zlib1g-dev libjpeg-dev libpng-dev pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--python" ]; then
  venv="${QTOOLS_VENV:-$HOME/.cache/qtools-venv}"
  if ! "$venv/bin/python" -c "import torch, numpy, safetensors, onnx, onnxruntime" 2>/dev/null; then
    echo "setup: building the Python virtualenv for interop tests in $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip >/dev/null
    # A CPU wheel shipped on the machine avoids downloading torch's CUDA build from PyPI.
    wheel=$(ls /opt/wheels/torch-*+cpu-*.whl 2>/dev/null | head -n 1 || true)
    "$venv/bin/pip" install -q "${wheel:-torch}" numpy safetensors onnx onnxruntime
  fi
  # Pillow: the image decoding and resizing tests compare against it.
  if ! "$venv/bin/python" -c "import PIL" 2>/dev/null; then
    "$venv/bin/pip" install -q pillow
  fi
  # torch's dynamo ONNX exporter needs onnxscript (ONNXTorchExportTests runs it when present);
  # optional: without it only the TorchScript exporter's graphs are tested.
  if ! "$venv/bin/python" -c "import onnxscript" 2>/dev/null; then
    "$venv/bin/pip" install -q onnxscript >&2 || echo "setup: onnxscript not installed (dynamo exporter untested)" >&2
  fi
  # `qtools train --tensorboard` event files are read back with the real tensorboard package
  # (TrainOutputTests runs it when present); optional: without it only the framing is tested.
  if ! "$venv/bin/python" -c "import tensorboard" 2>/dev/null; then
    "$venv/bin/pip" install -q tensorboard >&2 || echo "setup: tensorboard not installed (event files untested)" >&2
  fi
  echo "$venv/bin/python"
fi
