#!/usr/bin/env bash
# Fails if a module imports one to its right: Tensors <- Formats <- Inference <- Train <- QTools.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
check() { # module, forbidden imports...
  local m=$1; shift
  [ -d "Sources/$m" ] || return 0
  for f in "$@"; do
    if grep -rqE "^(@testable )?import $f\$" "Sources/$m"; then
      echo "import direction: Sources/$m imports $f" >&2; fail=1
    fi
  done
}
check Tensors Formats Inference Train QTools COpenBLAS CZlib CKernels
check Formats Inference Train QTools COpenBLAS CKernels
check Inference Train QTools
check Train QTools
exit $fail
