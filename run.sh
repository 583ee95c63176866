#!/usr/bin/env bash
# The main job on a bundled default: build qtools (release) and inspect a bundled
# QTool checkpoint (2-bit LSQ ResNet-18). Pass other arguments to run any qtools command:
#   ./run.sh                      # qtools inspect --stats fixtures/golden/resnet18_lsq_a2w2/checkpoint.pth
#   ./run.sh inspect my.pth --json
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
swift build -c release --static-swift-stdlib --product qtools >&2
if [ $# -eq 0 ]; then
  set -- inspect --stats fixtures/golden/resnet18_lsq_a2w2/checkpoint.pth
fi
exec .build/release/qtools "$@"
