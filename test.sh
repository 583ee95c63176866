#!/usr/bin/env bash
# Runs every test: installs the system libraries and the Python interop environment
# (torch, numpy, safetensors, onnx, onnxruntime) if missing, then `swift test`.
set -euo pipefail
cd "$(dirname "$0")"
QTOOLS_PYTHON="$(scripts/setup.sh --python)"
export QTOOLS_PYTHON
swift build --build-tests
swift test --skip-build "$@"
