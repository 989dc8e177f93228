#!/usr/bin/env bash
# The same experiment on the AVX-512 kernels and on the portable ones
# (MELODIC_NO_AVX512=1) must give byte-identical summary.json files: features
# (mn04 layers: fused AVX-512 vs conv2d.c kernels), training (mm_sgemm's
# AVX-512 vs AVX2/scalar micro-kernels) and every learner. A small RAVDESS
# slice (4 actors, 60 clips), each run with its own feature cache. Skips
# (exit 0, one line) without the data or the mn04 weights; on a CPU without
# AVX-512 both runs take the portable path and the check still runs.
set -u
cd "$(dirname "$0")/.."
bin=${MELODIC_BIN:-build/melodic}
data=${MELODIC_DATA:-../shared/data}
models=${MELODIC_MODELS:-../shared/models}
if [ ! -d "$data/ravdess/Actor_01" ] || [ ! -f "$models/efficientat/mn04_as_mAP_432.pt" ]; then
  echo "check_portable_results: skipped (no RAVDESS under $data or no mn04 weights under $models)"
  exit 0
fi
work=$(mktemp -d /tmp/mm_portable.XXXXXX)
trap 'rm -rf "$work"' EXIT
data_abs=$(cd "$data" && pwd)
{
  echo "path,label,group"
  for a in 01 02 03 04; do
    for f in "$data_abs"/ravdess/Actor_$a/03-01-0?-0?-01-01-$a.flac; do
      b=$(basename "$f"); e=${b:6:2}
      echo "$f,e$e,actor$a"
    done
  done
} > "$work/manifest.csv"
cat > "$work/exp.yaml" <<YAML
name: portable_check
seed: 7
dataset: {type: csv, manifest: $work/manifest.csv}
features: [mn04_layers, speech_162]
protocol: {kind: group_kfold, n_folds: 4}
preprocessing: {scaler: standard}
models:
  - {name: logreg, model: logreg, params: {C: 0.01}}
  - {name: svm, model: svm}
  - {name: mlp, model: mlp, params: {hidden_layer_sizes: [16], max_iter: 30}}
  - {name: forest, model: rf, params: {n_estimators: 20}}
ensembles:
  - {name: ensemble, members: [logreg, svm, mlp], voting: soft}
tsne: false
YAML
for v in 0 1; do
  if ! MELODIC_NO_AVX512=$v "$bin" run "$work/exp.yaml" -o "$work/out$v" -j 2 --quiet --set "cache=$work/cache$v" \
       > "$work/log$v" 2>&1; then
    echo "check_portable_results: melodic run with MELODIC_NO_AVX512=$v failed:" >&2
    tail -5 "$work/log$v" >&2
    exit 1
  fi
done
if ! cmp -s "$work/out0/summary.json" "$work/out1/summary.json"; then
  echo "check_portable_results: summary.json differs between the AVX-512 and the portable kernels:" >&2
  diff "$work/out0/summary.json" "$work/out1/summary.json" | head -20 >&2
  exit 1
fi
n=$(grep -c '"accuracy"' "$work/out0/summary.json")
echo "check_portable_results: summary.json byte-identical on the AVX-512 and the portable kernels ($n models, $(($(wc -l < "$work/manifest.csv") - 1)) clips)"
