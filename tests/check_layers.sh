#!/bin/bash
# check_layers.sh — the folders of src/ are layers, read like the pipeline:
# a folder may include headers of folders below it, never above it, so the
# folder graph has no cycle. Fails (status 1) naming the file and include of
# every upward include and every cycle; known debts are listed, with their
# reason, in tests/layers_known.txt ("from -> to  # why") and reported, not
# failed. Run from the checkout: tests/check_layers.sh (make test-layers).
set -u
cd "$(dirname "$0")/.." || exit 2
# lowest first
ORDER=(core io mpi dsp audio eval nn features learn data runtime exp cli)
KNOWN=tests/layers_known.txt
declare -A rank
for i in "${!ORDER[@]}"; do rank[${ORDER[$i]}]=$i; done
fail=0
for d in src/*/; do
    d=$(basename "$d")
    if [ -z "${rank[$d]+x}" ]; then echo "check_layers: src/$d is in no layer: add it to ORDER in $0"; fail=1; fi
done
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
for f in src/*/*.c src/*/*.h; do
    from=$(basename "$(dirname "$f")")
    grep -o '^#include "[a-z0-9_]*/[^"]*"' "$f" | sed 's/#include "//; s/"$//' | while read -r inc; do
        to=${inc%%/*}
        [ "$to" = "$from" ] && continue
        [ -z "${rank[$to]+x}" ] && continue
        echo "$from $to $f $inc"
    done
done > "$edges"
known() { [ -f "$KNOWN" ] && grep -q "^$1 -> $2\b" "$KNOWN"; }
while read -r from to f inc; do
    if [ "${rank[$to]}" -gt "${rank[$from]}" ]; then
        if known "$from" "$to"; then continue; fi
        echo "check_layers: upward include: $f includes \"$inc\" ($from is below $to)"
        fail=1
    fi
done < "$edges"
# cycles among the folder edges that are not known debts (tsort names them)
cyc=$(awk '{print $1, $2}' "$edges" | sort -u | while read -r a b; do known "$a" "$b" || echo "$a $b"; done | tsort 2>&1 >/dev/null)
if [ -n "$cyc" ]; then echo "check_layers: include cycle between folders:"; echo "$cyc" | sed 's/^/  /'; fail=1; fi
if [ -f "$KNOWN" ]; then
    grep -v '^#' "$KNOWN" | grep -v '^$' | while read -r line; do
        a=$(echo "$line" | awk '{print $1}'); b=$(echo "$line" | awk '{print $3}')
        n=$(awk -v a="$a" -v b="$b" '$1 == a && $2 == b' "$edges" | wc -l)
        if [ "$n" -gt 0 ]; then echo "check_layers: known debt ($n includes): $line"; fi
    done
fi
[ $fail = 0 ] && echo "check_layers: ${#ORDER[@]} layers, no upward include, no cycle"
exit $fail
