#!/usr/bin/env bash
# The main job on a bundled default: build qtools (release) and inspect a bundled
# QTool checkpoint (2-bit LSQ ResNet-18). Pass other arguments to run any qtools command:
#   ./run.sh                      # qtools inspect --stats fixtures/golden/resnet18_lsq_a2w2/checkpoint.pth
#   ./run.sh inspect my.pth --json
#   ./run.sh train                # train a 2-bit LSQ ResNet-20 on the built-in synthetic set
#                                 # (configs/synthetic_resnet20_lsq_a2w2.txt; extra options follow)
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
swift build -c release --static-swift-stdlib --product qtools >&2
if [ $# -eq 0 ]; then
  set -- inspect --stats fixtures/golden/resnet18_lsq_a2w2/checkpoint.pth
fi
if [ "$1" = train ] && { [ $# -eq 1 ] || [[ "$2" == -* ]]; }; then
  # The end-to-end training demo: default initialisation, fast path on 2 threads, one
  # line per epoch; checkpoints, log and curves under a fresh temporary folder.
  shift
  out=$(mktemp -d "${TMPDIR:-/tmp}/qtools-train.XXXXXX")
  echo "checkpoints: $out/weights, log and curves: $out/log" >&2
  exec .build/release/qtools train configs/synthetic_resnet20_lsq_a2w2.txt --threads 2 \
    --weights_dir "$out/weights" --log_dir "$out/log" "$@"
fi
exec .build/release/qtools "$@"
