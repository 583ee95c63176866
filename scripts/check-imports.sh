#!/usr/bin/env bash
# Fails if any Swift file imports a module it may not (docs/architecture.md):
#   Tensors -> Formats -> QToolConfig -> Engine -> Models -> Train -> QTools
# A module may import only modules to its left (and its own C shims); Engine imports no
# Formats or QToolConfig at all (it knows no file formats and no QTool words). Every import
# counts: indented ones inside #if, @testable, @_exported, `import struct X.Y`, and the
# test targets (Tests/<Module>Tests may import what <Module> may, plus <Module> itself).
set -euo pipefail
cd "$(dirname "$0")/.."

# module -> the project modules it may import
declare -A allowed=(
  [Tensors]=""
  [Formats]="Tensors CZlib"
  [QToolConfig]="Tensors Formats"
  [Engine]="Tensors CKernels COpenBLAS"
  [Models]="Tensors Formats QToolConfig Engine"
  [Train]="Tensors Formats QToolConfig Engine Models CImageCodecs"
  [QTools]="Tensors Formats QToolConfig Engine Models Train CMalloc"
  [TestSupport]="Tensors"
)
project="Tensors Formats QToolConfig Engine Models Train QTools CKernels COpenBLAS CZlib CMalloc CImageCodecs TestSupport"

fail=0
check_dir() { # dir, allowed modules
  local dir=$1 ok=" $2 " file line mod
  [ -d "$dir" ] || return 0
  while IFS= read -r hit; do
    file=${hit%%:*}
    line=${hit#*:}; line=${line#*:}
    mod=$(sed -E 's/^[[:space:]]*(@[A-Za-z_]+[[:space:]]+)*import[[:space:]]+((typealias|struct|class|enum|protocol|let|var|func)[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*).*/\4/' <<<"$line")
    case " $project " in *" $mod "*) ;; *) continue ;; esac
    case "$ok" in *" $mod "*) ;; *) echo "import direction: $file imports $mod" >&2; fail=1 ;; esac
  done < <(grep -rnE '^[[:space:]]*(@[A-Za-z_]+[[:space:]]+)*import[[:space:]]' "$dir" --include='*.swift' || true)
}

for m in "${!allowed[@]}"; do
  check_dir "Sources/$m" "${allowed[$m]}"
done
check_dir Tests/TestSupport "${allowed[TestSupport]}"
for t in Tests/*Tests; do
  m=$(basename "$t" Tests)
  [ -n "${allowed[$m]+set}" ] || { echo "import direction: $t tests no known module" >&2; fail=1; continue; }
  check_dir "$t" "${allowed[$m]} $m TestSupport"
done
# Every Sources module is known to this script.
for d in Sources/*/; do
  m=$(basename "$d")
  case " $project " in *" $m "*) ;; *) echo "import direction: Sources/$m is not in scripts/check-imports.sh" >&2; fail=1 ;; esac
done
exit $fail
