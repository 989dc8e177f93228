#!/usr/bin/env bash
# `make run`: the main job on the default data — the paper's Table II (speech,
# RAVDESS) and Table III (music, 4Q) reproductions, each under the honest
# group protocol and the random stratified split, then the figures.
# RUN_EXPERIMENTS="a b" limits the list; MELODIC_THREADS sets -j. The three nested-search
# twins (music_layers_artist_nested, speech_layers_speaker_nested,
# speech_calibrated_speaker_nested: 13 logistic-regression and 13 SVM fits per round)
# run after the experiments whose features they reuse.
# table2_speech_leaky_augment is the common recipe that augments before splitting (copies
# of one recording in training and test, flagged LEAKY); its twin augments after the split
# and runs first, extracting the copies both read from the cache (2 minutes together on 2
# cores, the extraction included).
# speech_robust_speaker8 (the served recipe on all 8 RAVDESS emotions, 3 minutes on 2 idle
# cores) is not in the default list, to keep make run under 30 minutes; its committed
# results come from RUN_EXPERIMENTS=speech_robust_speaker8 make run at the same commit.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/melodic
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}   # as this machine kind documents (see Makefile)
j=${MELODIC_THREADS:-$(nproc)}
exps=${RUN_EXPERIMENTS:-"table3_music_artist table3_music_random table2_speech_mn04_speaker table2_speech_mn04_random table2_speech_augment_after_split table2_speech_leaky_augment speech_beyond_speaker music_beyond_artist music_layers_artist speech_layers_speaker speech_calibrated_speaker table2_speech_cnn_speaker table2_speech_cnn_random music_layers_artist_nested speech_layers_speaker_nested speech_calibrated_speaker_nested speech_robust_speaker"}
data=${MELODIC_DATA:-../shared/data}
models=${MELODIC_MODELS:-../shared/models}
# The paper's own network, PANNs CNN14, once `make weights` has fetched it (needs internet);
# without it the paper's-method rows use EfficientAT mn04 (table2_speech_mn04_*).
if [ -z "${RUN_EXPERIMENTS:-}" ]; then
  if [ -f "$models/panns/Cnn14_16k_mAP=0.438.pth" ]; then
    exps="$exps table2_speech_cnn14_speaker table2_speech_cnn14_random"
  else
    echo "make run: no PANNs CNN14 weights under $models/panns (make weights needs internet): the paper's-method rows use EfficientAT mn04" >&2
  fi
fi
if [ ! -d "$data/ravdess" ] && [ ! -d data/ravdess ]; then
  echo "make run: no data under $data or ./data — run scripts/fetch_data.sh (needs internet) or set MELODIC_DATA" >&2
  exit 1
fi
done_list=()
t_all=$SECONDS
for e in $exps; do
  echo "== $e"
  t0=$SECONDS
  $bin run "experiments/$e.yaml" -o "results/$e" -j "$j" --resume
  echo "== $e: $((SECONDS - t0)) s (make run so far: $((SECONDS - t_all)) s)" >&2
  done_list+=("results/$e")
  rm -rf "results/$e/units"
  echo "scripts/run_main.sh (make run) at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown): $bin run experiments/$e.yaml -o results/$e -j $j; /usr/bin/python3 scripts/plot_results.py results/$e" > "results/$e/made_by.txt"
done
if /usr/bin/python3 -c 'import matplotlib, h5py' 2>/dev/null; then
  for d in "${done_list[@]}"; do /usr/bin/python3 scripts/plot_results.py "$d" || echo "plotting $d failed" >&2; done
fi
if /usr/bin/python3 -c 'import sklearn, h5py' 2>/dev/null; then   # the end-to-end benchmark (a few minutes)
  /usr/bin/python3 scripts/bench_congruence.py > results/congruence.txt.tmp && mv results/congruence.txt.tmp results/congruence.txt ||
    echo "bench_congruence failed" >&2
fi
scripts/collect_results.sh || true
echo
echo "Tables: results/README.md (all of them), results/*/summary.md (and summary.json); figures: results/*/fig_*.png; full results: results/*/results.h5"
for d in "${done_list[@]}"; do echo "  $d/summary.md"; done
