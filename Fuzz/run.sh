#!/bin/sh
# Builds and runs the libFuzzer targets (by hand; `.ci/run` runs each briefly with QTOOLS_FUZZ=1).
#   Fuzz/run.sh [TARGET] [seconds]     TARGET: torch (default), config, onnx, all; seconds default 30
#   Fuzz/run.sh 30                     (the old form: the torch target for 30 s)
#   QTOOLS_FUZZ_RUNS=N Fuzz/run.sh all  N inputs per target from seed 1 (what .ci/run does)
#   QTOOLS_FUZZ_MAXLEN=8192 ...          inputs of at most 8192 bytes (fixture seeds larger than
#                      that are left out; Fuzz/corpus holds small seeds of every format):
#                      the fast setting for campaigns of millions of executions
#   QTOOLS_FUZZ_TIMEOUT=1               an input that runs longer than 1 s is a failure (default 2)
#   QTOOLS_FUZZ_FLAGS="-report_slow_units=1"  more libFuzzer options (here: keep every input slower
#                      than 1 s as slow-unit-*, to re-time when the machine is idle; under load a
#                      wall-clock -timeout of 1 s reports starved inputs as hangs)
#   QTOOLS_FUZZ_ASAN=0 Fuzz/run.sh onnx 3600   without AddressSanitizer (several times the
#                      executions per second, for the long by-hand campaigns; Swift's own
#                      bounds and overflow checks still trap; built in .build/fuzz-noasan)
# Targets:
#   torch   every reader through ModelFile (torch zip/legacy/tar, pickle, safetensors, npy/npz,
#           ONNX) and the Unpickler (PickleFuzz.swift, compiled into Formats)
#   config  QTool config files, command-line options, mapping files (ConfigFuzz.swift, into QToolConfig)
#   onnx    the ONNX importer, planner and executor (ONNXImportFuzz.swift, into Models)
# Corpora live in .build/fuzz/corpus-TARGET, seeded from fixtures/ (plus Fuzz/corpus/TARGET when
# present); crashes are written to .build/fuzz/ as crash-*. The modules a target sits on
# (Tensors, SwiftProtobuf, Formats; for onnx also QToolConfig, the C kernels and Engine) are
# built as static libraries, again only when their sources changed.
set -eu
cd "$(dirname "$0")/.."
TARGET=torch
case "${1:-}" in
    torch|config|onnx|all) TARGET=$1; shift ;;
esac
SECS=${1:-30}
OUT=.build/fuzz
SAN="-sanitize=fuzzer,address -parse-as-library -g -O"
ASAN="-sanitize=address"
CASAN="-fsanitize=address"
if [ "${QTOOLS_FUZZ_ASAN:-1}" = 0 ]; then
    OUT=.build/fuzz-noasan
    SAN="-sanitize=fuzzer -parse-as-library -g -O"
    ASAN=""
    CASAN=""
fi
mkdir -p "$OUT"
# SwiftProtobuf (for the ONNX reader) comes from the package checkout: run `swift build` once first.
PB=.build/checkouts/swift-protobuf/Sources/SwiftProtobuf
[ -d "$PB" ] || { echo "run 'swift build' first (needs $PB)" >&2; exit 1; }
FORMATS=$(find Sources/Formats -name '*.swift')

libs() {
    if [ ! -f "$OUT/libSwiftProtobuf.a" ]; then
        swiftc $ASAN -parse-as-library -O -emit-library -static -emit-module \
            -module-name SwiftProtobuf -package-name swift_protobuf -emit-module-path "$OUT/SwiftProtobuf.swiftmodule" \
            -o "$OUT/libSwiftProtobuf.a" "$PB"/*.swift
    fi
    if [ ! -f "$OUT/libTensors.a" ] || [ -n "$(find Sources/Tensors -newer "$OUT/libTensors.a" -name '*.swift')" ]; then
        swiftc $SAN -package-name qtools -emit-library -static -emit-module -module-name Tensors \
            -emit-module-path "$OUT/Tensors.swiftmodule" -o "$OUT/libTensors.a" Sources/Tensors/*.swift
    fi
}

module() {  # module NAME DIR FLAGS...: Sources/DIR as a static library with its module
    name=$1
    dir=$2
    shift 2
    if [ ! -f "$OUT/lib$name.a" ] || [ -n "$(find "Sources/$dir" -newer "$OUT/lib$name.a" -name '*.swift')" ]; then
        swiftc $SAN -package-name qtools -emit-library -static -emit-module -module-name "$name" \
            -emit-module-path "$OUT/$name.swiftmodule" -I "$OUT" -o "$OUT/lib$name.a" "$@" \
            $(find "Sources/$dir" -name '*.swift')
    fi
}

ckernels() {
    mkdir -p "$OUT/ckernels"
    for c in Sources/CKernels/*.c; do
        clang -O2 -g $CASAN -I Sources/CKernels/include -c "$c" -o "$OUT/ckernels/$(basename "$c" .c).o"
    done
    ar rcs "$OUT/libCKernels.a" "$OUT"/ckernels/*.o
    # Every public header, as SwiftPM's umbrella directory gives them to Swift.
    { echo 'module CKernels {'
      for h in Sources/CKernels/include/*.h; do echo "    header \"$PWD/$h\""; done
      echo '    export *'
      echo '}'; } > "$OUT/ckernels/module.modulemap"
}

seed() {  # seed TARGET FILES...: fixtures, then the committed corpus Fuzz/corpus/TARGET
    t=$1
    shift
    mkdir -p "$OUT/corpus-$t"
    if [ -z "$(ls "$OUT/corpus-$t")" ]; then
        for f in "$@"; do
            if [ -n "${QTOOLS_FUZZ_MAXLEN:-}" ] && [ "$(wc -c < "$f")" -gt "$QTOOLS_FUZZ_MAXLEN" ]; then continue; fi
            cp "$f" "$OUT/corpus-$t/$(echo "$f" | tr '/' '_')"
        done
    fi
    if [ -d "Fuzz/corpus/$t" ]; then cp Fuzz/corpus/"$t"/* "$OUT/corpus-$t/"; fi
}

run() {  # run NAME MAX_LEN -- libFuzzer options
    name=$1
    maxlen=${QTOOLS_FUZZ_MAXLEN:-$2}
    shift 2
    if [ -n "${QTOOLS_FUZZ_RUNS:-}" ]; then
        # Bounded and reproducible (CI): a fixed number of inputs from a fixed seed.
        echo "== fuzz $name: $QTOOLS_FUZZ_RUNS runs, seed 1"
        limit="-runs=$QTOOLS_FUZZ_RUNS -seed=1"
    else
        echo "== fuzz $name for ${SECS}s"
        limit="-max_total_time=$SECS"
    fi
    # Swift's own backtracer would take the trap signal of a runtime failure first, and
    # libFuzzer would then never write the crashing input: it is turned off here.
    # shellcheck disable=SC2086
    SWIFT_BACKTRACE=enable=no "$OUT/$name-fuzz" $limit -timeout="${QTOOLS_FUZZ_TIMEOUT:-2}" -rss_limit_mb=2048 -artifact_prefix="$OUT/crash-$name-" \
        -print_final_stats=1 -max_len="$maxlen" ${QTOOLS_FUZZ_FLAGS:-} "$@" "$OUT/corpus-$name"
}

torch() {
    libs
    swiftc $SAN -module-name Formats -package-name qtools -I "$OUT" -L "$OUT" -lTensors -lSwiftProtobuf -I Sources/CZlib -lz \
        -o "$OUT/torch-fuzz" $FORMATS Fuzz/PickleFuzz.swift
    seed torch fixtures/golden/resnet20_fixup/checkpoint.pth fixtures/golden/resnet20_fixup/checkpoint-legacy.pth \
        fixtures/golden/resnet20_fixup/input.npy
    [ -f "$OUT/corpus-torch/dict.pkl" ] ||
        printf '\200\002}q\000(X\001\000\000\000aq\001]q\002(K\001G@\004\000\000\000\000\000\000e.' > "$OUT/corpus-torch/dict.pkl"
    run torch 1048576
}

config() {
    libs
    module Formats Formats -I Sources/CZlib
    swiftc $SAN -module-name QToolConfig -package-name qtools -I "$OUT" -L "$OUT" -lFormats -lTensors -lSwiftProtobuf \
        -I Sources/CZlib -lz -o "$OUT/config-fuzz" $(find Sources/QToolConfig -name '*.swift') Fuzz/ConfigFuzz.swift
    seed config $(ls fixtures/golden/*/config.txt | head -4) fixtures/golden/pytorch_resnet18_fp/name_map.txt
    run config 16384
}

onnx() {
    libs
    module Formats Formats -I Sources/CZlib
    module QToolConfig QToolConfig -I Sources/CZlib
    ckernels
    module Engine Engine -I "$OUT/ckernels" -I Sources/COpenBLAS
    swiftc $SAN -module-name Models -package-name qtools -I "$OUT" -L "$OUT" -I "$OUT/ckernels" -I Sources/CZlib \
        -I Sources/COpenBLAS -lEngine -lQToolConfig -lFormats -lTensors -lSwiftProtobuf -lCKernels -lopenblas -lz \
        -o "$OUT/onnx-fuzz" $(find Sources/Models -name '*.swift') Fuzz/ONNXImportFuzz.swift
    seed onnx $(find fixtures -name '*.onnx' | head -8)
    run onnx 262144
}

case $TARGET in
    all) torch; config; onnx ;;
    *) $TARGET ;;
esac
