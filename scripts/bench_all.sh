#!/usr/bin/env bash
# `make bench`: every side-by-side benchmark (engine vs the reference library,
# same data, one run each). Slow: minutes each. Output: build/bench/<name>.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/bench
for b in scripts/bench_*; do
  case "$b" in *.c|*.h|*_driver*|*bench_all.sh) continue ;; esac
  [ -x "$b" ] || continue
  name=$(basename "$b"); name=${name%.*}
  echo "== $name"
  "$b" 2>&1 | tee "build/bench/$name.txt" || echo "$name failed" >&2
done
