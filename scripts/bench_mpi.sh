#!/usr/bin/env bash
# bench_mpi.sh — scale-out on this machine, in one run: the same job as
# 1 rank × 1 thread (the reference), 1 rank × 2 threads (OpenMP) and
# 2 ranks × 1 thread (mpirun), for
#   extract: mn04 embeddings of RAVDESS (MAX_PER_CLASS clips per class, 0 = all 1,440)
#   run:     experiments/table3_music_artist.yaml (4Q, music_paper features,
#            MLP/RF/GBDT/SVM + ensemble, 5 artist folds; the table is
#            extracted once beforehand so only the units are timed)
# Prints wall and CPU time (user + sys of every process, mpirun's ranks
# included), speed-up over 1 × 1 and efficiency (speed-up / cores),
# and checks that every configuration's output equals the reference's.
# Usage: scripts/bench_mpi.sh [extract|run|all]   (env: MAX_PER_CLASS, BENCH_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
BIN=${MELODIC_BIN:-build/melodic}
out=${BENCH_DIR:-build/bench_mpi}
mpc=${MAX_PER_CLASS:-0}
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
export OMP_WAIT_POLICY=passive        # shared machine: idle threads sleep
MPIRUN="mpirun --oversubscribe --bind-to none"
[ -x "$BIN" ] || make -j2 all

# run LABEL CORES CMD...: time CMD, print a row against the first row's time
ref_t=""
row() {
  local label=$1 cores=$2; shift 2
  /usr/bin/time -f "%e %U %S" -o "$out/time.txt" "$@" > "$out/last.log" 2>&1 || { echo "FAILED: $*"; tail -5 "$out/last.log"; exit 1; }
  local dt cpu
  read -r dt u s < "$out/time.txt"
  cpu=$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}')
  [ -z "$ref_t" ] && ref_t=$dt
  awk -v l="$label" -v t="$dt" -v r="$ref_t" -v c="$cores" -v cpu="$cpu" \
    'BEGIN{s=r/t; printf "  %-20s wall %7.2f s  cpu %7.2f s  speed-up %5.2f  efficiency %5.2f\n", l, t, cpu, s, s/c}'
}
same_h5() {   # same_h5 A B SKIP: every dataset equal (names containing SKIP excepted)
  /usr/bin/python3 - "$1" "$2" "${3:-}" <<'PY'
import sys, h5py, numpy as np
a, b, skip = h5py.File(sys.argv[1]), h5py.File(sys.argv[2]), sys.argv[3]
names = []
a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
def val(d):
    x = np.asarray(d[()])
    return x.tolist() if x.dtype.kind == "O" else x.tobytes()
bad = [n for n in names if not (skip and skip in n) and (n not in b or val(a[n]) != val(b[n]))]
print("  outputs equal to 1 × 1: %s (%d datasets compared)" % ("yes" if not bad else "NO: " + ", ".join(bad[:5]), len(names)))
PY
}

if [ "$what" = extract ] || [ "$what" = all ]; then
  cfg="$out/mn04_ravdess.yaml"
  printf 'include:\n  - %s/configs/datasets/ravdess8.yaml\n  - %s/configs/features/mn04.yaml\n' "$PWD" "$PWD" > "$cfg"
  [ "$mpc" != 0 ] && printf 'dataset: {max_per_class: %s}\n' "$mpc" >> "$cfg"
  echo "extract: mn04 embeddings of RAVDESS ($([ "$mpc" = 0 ] && echo all clips || echo "$mpc per class"))"
  ref_t=""
  row "1 rank × 1 thread" 1 env OMP_NUM_THREADS=1 "$BIN" extract "$cfg" -j 1 -o "$out/x11.h5"
  row "1 rank × 2 threads" 2 env OMP_NUM_THREADS=2 "$BIN" extract "$cfg" -j 2 -o "$out/x12.h5"
  row "2 ranks × 1 thread" 2 env OMP_NUM_THREADS=1 $MPIRUN -np 2 "$BIN" extract "$cfg" -j 1 -o "$out/x21.h5"
  same_h5 "$out/x11.h5" "$out/x21.h5"
  same_h5 "$out/x11.h5" "$out/x12.h5"
fi

if [ "$what" = run ] || [ "$what" = all ]; then
  exp=experiments/table3_music_artist.yaml
  echo "run: $exp (table extracted once first)"
  ref_t=""
  common=(--quiet --set tsne.enabled=false --set cache="$out/cache")
  rm -rf "$out/r11" "$out/r12" "$out/r21"
  # warm the feature cache (not timed)
  "$BIN" run "$exp" -o "$out/warm" "${common[@]}" --set models='[{name: svm, model: svm}]' --set ensembles='[]' > /dev/null 2>&1 || true
  row "1 rank × 1 thread" 1 env OMP_NUM_THREADS=1 "$BIN" run "$exp" -j 1 -o "$out/r11" "${common[@]}"
  row "1 rank × 2 threads" 2 env OMP_NUM_THREADS=2 "$BIN" run "$exp" -j 2 -o "$out/r12" "${common[@]}"
  row "2 ranks × 1 thread" 2 env OMP_NUM_THREADS=1 $MPIRUN -np 2 "$BIN" run "$exp" -j 1 -o "$out/r21" "${common[@]}"
  same_h5 "$out/r11/results.h5" "$out/r21/results.h5" seconds
  same_h5 "$out/r11/results.h5" "$out/r12/results.h5" seconds
  /usr/bin/python3 - "$out/r11/results.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1])
print("  per-unit fit+predict seconds (1 × 1):")
for m in f["models"]:
    g = f["models"][m]["metrics"]
    t = np.asarray(g["fit_seconds"]) + np.asarray(g["predict_seconds"])
    print("    %-14s mean %6.2f  max %6.2f  (%d rounds)" % (m, t.mean(), t.max(), len(t)))
PY
fi
