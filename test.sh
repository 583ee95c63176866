#!/usr/bin/env bash
# Runs every test: installs the system libraries and the Python interop environment
# (torch, numpy, safetensors, onnx, onnxruntime) if missing, then `swift test`.
set -euo pipefail
cd "$(dirname "$0")"
QTOOLS_PYTHON="$(scripts/setup.sh --python)"
export QTOOLS_PYTHON
# The C kernels are optimized in debug builds too (the tests run them at real sizes): -O3
# comes from the command line, not the manifest, so qtools stays usable as a dependency.
swift build --build-tests -Xcc -O3
swift test --skip-build "$@"
