#!/bin/sh
# Builds and runs the libFuzzer target for the torch checkpoint reader (by hand, not in CI).
#   Fuzz/run.sh [seconds]     (default 30; corpus in .build/fuzz/corpus, seeded from fixtures/golden)
# Tensors is built as a static library; Formats is compiled together with PickleFuzz.swift
# as one module so the fuzzer can reach the internal Unpickler.
set -eu
cd "$(dirname "$0")/.."
SECS=${1:-30}
OUT=.build/fuzz
mkdir -p "$OUT/corpus"
SAN="-sanitize=fuzzer,address -parse-as-library -g -O"
# SwiftProtobuf (for the ONNX reader) comes from the package checkout: run `swift build` once first.
PB=.build/checkouts/swift-protobuf/Sources/SwiftProtobuf
[ -d "$PB" ] || { echo "run 'swift build' first (needs $PB)" >&2; exit 1; }
if [ ! -f "$OUT/libSwiftProtobuf.a" ]; then
    swiftc -sanitize=address -parse-as-library -O -emit-library -static -emit-module \
        -module-name SwiftProtobuf -package-name swift_protobuf -emit-module-path "$OUT/SwiftProtobuf.swiftmodule" \
        -o "$OUT/libSwiftProtobuf.a" "$PB"/*.swift
fi
swiftc $SAN -package-name qtools -emit-library -static -emit-module -module-name Tensors \
    -emit-module-path "$OUT/Tensors.swiftmodule" -o "$OUT/libTensors.a" Sources/Tensors/*.swift
swiftc $SAN -module-name Formats -package-name qtools -I "$OUT" -L "$OUT" -lTensors -lSwiftProtobuf -I Sources/CZlib -lz \
    -o "$OUT/torch-fuzz" $(find Sources/Formats -name '*.swift') Fuzz/PickleFuzz.swift
# Seeds: small real checkpoints and their first pickle bytes.
if [ -z "$(ls "$OUT/corpus")" ]; then
    for f in fixtures/golden/resnet20_fixup/checkpoint.pth fixtures/golden/resnet20_fixup/checkpoint-legacy.pth; do
        cp "$f" "$OUT/corpus/$(basename "$(dirname "$f")")-$(basename "$f")"
    done
    printf '\200\002}q\000(X\001\000\000\000aq\001]q\002(K\001G@\004\000\000\000\000\000\000e.' > "$OUT/corpus/dict.pkl"
fi
exec "$OUT/torch-fuzz" -max_total_time="$SECS" -max_len=1048576 -rss_limit_mb=2048 "$OUT/corpus"
