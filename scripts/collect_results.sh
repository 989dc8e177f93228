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
  echo "other jobs, so the fit times are loose. Only summaries and figures are committed; \`results.h5\` (predictions, curves,"
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
