#!/usr/bin/env bash
# Checks third_party/ against what the project uses (run by `make test`):
#  - every valence–arousal point in configs/recommend/*.yaml is in
#    third_party/nrc-vad/values.tsv with the same numbers;
#  - the PANNs checksums there equal those scripts/fetch_weights.sh verifies;
#  - the AudioSet list matches its checksum (and the model root's copy, when present);
#  - the EfficientAT checkpoint in the model root, when present, matches CHECKSUMS;
#  - every library the built binary names (readelf NEEDED) is in NOTICE.md.
# Prints one line per failure naming the file and value; exits 1 on any.
set -u
cd "$(dirname "$0")/.."
bin=${MELODIC_BIN:-build/melodic}
models=${MELODIC_MODELS:-../shared/models}
bad=0
fail() { echo "check_third_party: $*" >&2; bad=1; }

for f in configs/recommend/*.yaml; do
  while read -r word v a; do
    [ -z "$word" ] && continue
    w=$word; [ "$f" = configs/recommend/default.yaml ] && [ "$word" = fearful ] && w=fear
    row=$(awk -F'\t' -v w="$w" '$1 == w {print $2, $3}' third_party/nrc-vad/values.tsv)
    [ "$row" = "$v $a" ] || fail "$f: '$word' is at ($v, $a) but third_party/nrc-vad/values.tsv has '$w' at (${row:-nothing})"
  done < <(sed -n 's/^ *\([a-z_]*\): *{valence: *\([0-9.]*\), *arousal: *\([0-9.]*\)}.*/\1 \2 \3/p' "$f")
done

while read -r sum name size; do
  grep -q "\"$name $size $sum\"" scripts/fetch_weights.sh ||
    fail "third_party/panns/CHECKSUMS: '$name' ($size bytes, $sum) is not what scripts/fetch_weights.sh verifies"
done < third_party/panns/CHECKSUMS

(cd third_party/audioset && sha256sum --quiet -c CHECKSUMS) || fail "third_party/audioset/class_labels_indices.csv: sha256 differs from CHECKSUMS"
if [ -f "$models/audioset/class_labels_indices.csv" ]; then
  cmp -s "$models/audioset/class_labels_indices.csv" third_party/audioset/class_labels_indices.csv ||
    fail "$models/audioset/class_labels_indices.csv differs from third_party/audioset/class_labels_indices.csv"
fi
if [ -f "$models/efficientat/mn04_as_mAP_432.pt" ]; then
  read -r sum name size < third_party/efficientat/CHECKSUMS
  [ "$(sha256sum < "$models/efficientat/$name" | cut -d' ' -f1)" = "$sum" ] &&
    [ "$(stat -c %s "$models/efficientat/$name")" = "$size" ] ||
    fail "$models/efficientat/$name: size or sha256 differs from third_party/efficientat/CHECKSUMS"
fi

if [ -x "$bin" ]; then
  for so in $(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    grep -q "^| $so |" third_party/NOTICE.md || fail "third_party/NOTICE.md: $bin links $so, which the notice does not list (run scripts/third_party_notice.sh)"
  done
else
  fail "$bin: not built"
fi
[ $bad = 0 ] && echo "third_party: values, checksums and the library notice agree with the project"
exit $bad
