#!/usr/bin/env bash
# Write results/README.md from the summaries under results/*/ (after make run):
# the tables, links to the figures, and the command and commit that made them.
set -euo pipefail
cd "$(dirname "$0")/.."

out=results/README.md
tmp=$out.tmp.$$
{
  echo "# Results"
  echo
  echo "The paper's reproductions are made by \`make run\` (\`scripts/run_main.sh\`: \`build/melodic run experiments/<name>.yaml -o results/<name>\`"
  echo "for each experiment, then \`/usr/bin/python3 scripts/plot_results.py results/<name>\`); each section names the command and"
  echo "the commit that made it (\`made_by.txt\`). Data: RAVDESS and the 4Q set as in ../shared/data; machine: 2 cores shared with"
  echo "other jobs, so the fit times (\`timing.json\`, kept apart from the metrics) are loose. Only summaries and figures are committed; \`results.h5\` (predictions, curves,"
  echo "t-SNE) is written next to them by a run. Results do not depend on the thread count."
  echo
  if [ -f results/congruence.txt ]; then
    echo "## End-to-end congruence (voice → emotion → playlist)"
    echo
    echo "\`/usr/bin/python3 scripts/bench_congruence.py\` on these results (speaker-independent speech predictions, artist-held-out"
    echo "music predictions, top-10 playlists of \`melodic recommend\`, policy match); its output:"
    echo
    echo '```'
    cat results/congruence.txt
    echo '```'
    echo
  fi
  if [ -f results/server_bench.txt ]; then
    echo "## Server latency and throughput"
    echo
    echo "\`/usr/bin/python3 scripts/bench_server.py --speech build/models/speech.h5 --library build/models/library.h5\`"
    echo "(the \`make serve\` models; POST /api/recommend with a 3.5 s RAVDESS clip; the Flask + PyTorch + scikit-learn app"
    echo "with the same models, in its best thread setting per metric); its output:"
    echo
    echo '```'
    cat results/server_bench.txt
    echo '```'
    echo
  fi
  if ls -d results/*_nested >/dev/null 2>&1; then
    echo "## Hand-picked hyperparameters vs nested search"
    echo
    echo "Each \`*_nested\` experiment is the twin of one whose C values were picked by hand after seeing cross-validated"
    echo "test scores; its values are chosen inside each outer training part (nested group k-fold), so the gap between"
    echo "the two rows is the selection bias of the hand-picked ones. Accuracy and macro-F1 in %, mean over the outer folds."
    echo
    echo "| experiment | model | hand-picked acc. | nested acc. | hand-picked F1 | nested F1 |"
    echo "|---|---|---|---|---|---|"
    for n in results/*_nested; do
      t=${n%_nested}
      [ -f "$n/summary.json" ] && [ -f "$t/summary.json" ] || continue
      /usr/bin/python3 - "$t/summary.json" "$n/summary.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for m, v in b["models"].items():
    if "accuracy" not in v or "accuracy" not in a["models"].get(m, {}):
        continue
    u = a["models"][m]
    print(f"| {a['name']} | {m} | {100 * u['accuracy']['mean']:.1f} | {100 * v['accuracy']['mean']:.1f} | "
          f"{100 * u['macro_f1']['mean']:.1f} | {100 * v['macro_f1']['mean']:.1f} |")
PY
    done
    echo
  fi
  if [ -f results/table2_speech_leaky_augment/summary.json ] && [ -f results/table2_speech_augment_after_split/summary.json ]; then
    echo "## Augmenting before or after the split"
    echo
    echo "The common RAVDESS recipe augments every clip (noise, pitch, stretch) before a random split, so copies of one"
    echo "recording are in training and test data (\`table2_speech_leaky_augment\`, flagged LEAKY); its twin makes the same"
    echo "copies after the split, for the training clips only (\`table2_speech_augment_after_split\`). Accuracy and macro-F1 in %."
    echo
    echo "| model | copies before the split (leaky) | after the split | leaky F1 | F1 |"
    echo "|---|---|---|---|---|"
    /usr/bin/python3 - results/table2_speech_leaky_augment/summary.json results/table2_speech_augment_after_split/summary.json <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for m, u in a["models"].items():
    v = b["models"].get(m, {})
    if "accuracy" not in u or "accuracy" not in v:
        continue
    print(f"| {m} | {100 * u['accuracy']['mean']:.1f} | {100 * v['accuracy']['mean']:.1f} | "
          f"{100 * u['macro_f1']['mean']:.1f} | {100 * v['macro_f1']['mean']:.1f} |")
c = a.get("copy_leakage", {})
if c:
    print(f"\nLeaky: {c['leaky_test_rows']} of {c['test_rows']} test rows have a copy of their source clip in training.")
PY
    echo
  fi
  for d in results/*/; do
    [ -f "$d/summary.md" ] || continue
    name=$(basename "$d")
    echo "## $name"
    echo
    sed -e '1d' "$d/summary.md"
    echo
    [ -f "$d/made_by.txt" ] && echo "Made by: \`$(cat "$d/made_by.txt")\`" && echo
    if ls "$d"fig_*.png >/dev/null 2>&1; then
      printf 'Figures:'
      for f in "$d"fig_*.png; do f=$(basename "$f"); printf ' [%s](%s/%s)' "${f%.png}" "$name" "$f"; done
      echo
    fi
    echo
  done
} > "$tmp"
mv "$tmp" "$out"
echo "wrote $out"
