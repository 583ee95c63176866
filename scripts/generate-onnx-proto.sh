#!/usr/bin/env bash
# Regenerates Sources/Formats/ONNX/Generated/onnx.pb.swift from onnx.proto (see docs/onnx-reader.md). Run by hand only;
# CI never builds the plugin: the generated file is committed.
#
# Needs: protoc (apt-get install -y protobuf-compiler; 3.21.12 was used) and protoc-gen-swift
# built from the swift-protobuf release Package.resolved pins (1.39.0):
#   git clone https://github.com/apple/swift-protobuf /tmp/swift-protobuf
#   git -C /tmp/swift-protobuf checkout 1.39.0
#   (cd /tmp/swift-protobuf && swift build -c release --product protoc-gen-swift)   # ~3 min on 2 cores
#
# Usage: scripts/generate-onnx-proto.sh [path/to/onnx.proto] [path/to/protoc-gen-swift]
# Defaults: the onnx.proto of the reference venv's onnx package (1.23.2) and the plugin above.
set -euo pipefail
cd "$(dirname "$0")/.."
PROTO="${1:-$HOME/.cache/qtools-venv/lib/python3.11/site-packages/onnx/onnx.proto}"
PLUGIN="${2:-/tmp/swift-protobuf/.build/release/protoc-gen-swift}"
OUT=Sources/Formats/ONNX/Generated
mkdir -p "$OUT"
protoc --plugin=protoc-gen-swift="$PLUGIN" \
  --proto_path="$(dirname "$PROTO")" \
  --swift_opt=Visibility=Package \
  --swift_out="$OUT" \
  "$(basename "$PROTO")"
# The one post-edit: the generated storage-backed messages read a `nonisolated(unsafe)` static
# (`_StorageClass.defaultInstance`, copy-on-write, safe by construction), which
# .strictMemorySafety() flags in 16 places. protoc-gen-swift 1.39.0 has no option for it, so mark
# those reads `unsafe` to keep the build warning-free.
sed -i 's/ = _StorageClass\.defaultInstance$/ = unsafe _StorageClass.defaultInstance/' "$OUT/onnx.pb.swift"
echo "wrote $OUT/onnx.pb.swift"
