#!/usr/bin/env bash
# `make bench`: every side-by-side benchmark (engine vs the reference library,
# same data, one run each). Slow: minutes each. Output: build/bench/<name>.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/bench
for name in bench_frontend bench_features bench_trees bench_svm bench_logreg bench_tsne bench_nn bench_mn04 \
            bench_cnn14 bench_experiment bench_congruence bench_calibration_skew bench_server bench_mpi; do
  b=$(ls scripts/$name scripts/$name.py scripts/$name.sh 2>/dev/null | head -1)
  [ -n "$b" ] || continue
  echo "== $name"
  case "$b" in *.py) /usr/bin/python3 "$b" ;; *) bash "$b" ;; esac 2>&1 | tee "build/bench/$name.txt" \
    || echo "$name failed" >&2
done
