#!/usr/bin/env bash
# Write results/README.md from the summaries under results/*/ (after make run):
# the tables, links to the figures, and the command and commit that made them.
set -euo pipefail
cd "$(dirname "$0")/.."
commit=${RESULTS_COMMIT:-$(git rev-parse --short=12 HEAD)}
out=results/README.md
tmp=$out.tmp.$$
{
  echo "# Results"
  echo
  echo "Made by \`make run\` (that is, \`scripts/run_main.sh\`: \`build/melodic run experiments/<name>.yaml -o results/<name> -j 2\`"
  echo "for each experiment below, then \`/usr/bin/python3 scripts/plot_results.py results/<name>\`) at commit \`$commit\`,"
  echo "on the default data (RAVDESS, the 4Q set) of this project's machines (2 cores). Only summaries and figures"
  echo "are committed; \`results.h5\` (predictions, curves, t-SNE) is written next to them by a run."
  echo
  for d in results/*/; do
    [ -f "$d/summary.md" ] || continue
    name=$(basename "$d")
    echo "## $name"
    echo
    sed -e '1d' "$d/summary.md"
    echo
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
