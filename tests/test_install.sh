#!/usr/bin/env bash
# tests/test_install.sh — make test-install: `make install` into a temporary
# prefix (the binary already built in $BUILD, default build), then, from
# unrelated temporary folders and with MELODIC_DATA/MODELS/SHARE unset, the
# installed commands: export two small bundles (logmel_stats + random forest:
# RAVDESS actors 1-2, 4 4Q tracks per quadrant), classify, index a folder
# given by a relative path, recommend and serve from another folder (a track
# fetched through the API must answer 200), export finding results/<name> as
# `make run` writes it or --results DIR; the model root found from the
# checkout (build tree) and named in the error of an installed binary; a bare
# binary without share/melodic naming every path it tried.
# Exits 0 with a message when the data is absent (like tests/browser/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${BUILD:-build}
data=${MELODIC_DATA:-../shared/data}
models=${MELODIC_MODELS:-../shared/models}
if [ ! -d "$data/ravdess/Actor_01" ] || [ ! -d "$data/music-4q/Q1" ]; then
  echo "test-install: skipped (no RAVDESS / 4Q data under $data)"
  exit 0
fi
data=$(cd "$data" && pwd)
[ -d "$models" ] && models=$(cd "$models" && pwd)
unset MELODIC_DATA MELODIC_MODELS MELODIC_SHARE

fail() { echo "test-install: FAILED: $*" >&2; exit 1; }
# under /tmp, never inside the checkout: an installed binary must not find it
tmp=$(mktemp -d /tmp/melodic-install.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
prefix=$tmp/prefix
work=$tmp/work
elsewhere=$tmp/elsewhere
mkdir -p "$work/lib" "$elsewhere"

${MAKE:-make} --no-print-directory -s install PREFIX="$prefix" BUILD="$build" > "$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "make install PREFIX=$prefix"; }
m=$prefix/bin/melodic
[ -x "$m" ] || fail "no $m"
[ -f "$prefix/share/melodic/configs/recommend/default.yaml" ] || fail "make install left out share/melodic/configs/recommend/default.yaml"
echo "test-install: installed into $prefix"

cd "$work"
# --- bundles, made by the installed binary from here ---
{
  echo "path,label,group"
  for a in 01 02; do
    for f in "$data"/ravdess/Actor_$a/*.flac "$data"/ravdess/Actor_$a/*.wav; do
      [ -f "$f" ] || continue
      case $(basename "$f" | cut -d- -f3) in 01) l=neutral;; 02) l=calm;; 03) l=happy;; 04) l=sad;;
        05) l=angry;; 06) l=fearful;; 07) l=disgust;; 08) l=surprised;; *) continue;; esac
      echo "$f,$l,$a"
    done
  done
} > speech.csv
[ "$(wc -l < speech.csv)" -gt 20 ] || fail "too few RAVDESS clips under $data/ravdess"
voice=$(sed -n 2p speech.csv | cut -d, -f1)
echo "path,label" > music.csv
for q in Q1 Q2 Q3 Q4; do
  mkdir -p "lib/$q"
  for f in $(ls "$data/music-4q/$q" | grep -i '\.mp3$' | head -4); do
    cp "$data/music-4q/$q/$f" "lib/$q/"
    echo "$work/lib/$q/$f,$q" >> music.csv
  done
done
for kind in speech music; do
  cat > $kind.yaml <<EOF
name: install_$kind
seed: 1
cache: cache
dataset: {type: csv, manifest: $work/$kind.csv}
features: [logmel_stats]
models:
  - {name: forest, model: rf, params: {n_estimators: 30}}
EOF
  "$m" export $kind.yaml --model forest -o $kind.h5 -j 2 > export_$kind.log 2>&1 ||
    { cat export_$kind.log; fail "melodic export $kind.yaml"; }
done
grep -q "warning: no results of 'install_speech'" export_speech.log || fail "export without results gave no warning"

# --- classify ---
"$m" classify speech.h5 "$voice" > classify.out || fail "melodic classify"
grep -Eq $'\t(neutral|calm|happy|sad|angry|fearful|disgust|surprised)\t' classify.out || fail "classify printed: $(cat classify.out)"

# --- index: the folder by a relative path; the library must work from elsewhere ---
"$m" index music.h5 lib -o library.h5 -j 2 --quiet 2> index.err || { cat index.err; fail "melodic index"; }
grep -q "indexed 16 of 16" index.err || fail "index: $(cat index.err)"
h5dump -d /tracks/path library.h5 | grep -q "\"$work/lib/Q1/" || fail "index stored relative track paths: $(h5dump -d /tracks/path library.h5 | sed -n 8,9p)"

# --- recommend, from another folder (the VA table found in PREFIX/share/melodic) ---
cd "$elsewhere"
"$m" recommend --speech ../work/speech.h5 --library ../work/library.h5 "$voice" -n 3 --json > rec.json 2> rec.err ||
  { cat rec.err; fail "melodic recommend from $elsewhere"; }
n=$(grep -c '"rank"' rec.json || true)
[ "$n" = 3 ] || fail "recommend gave $n tracks: $(cat rec.json)"
first=$(grep -o '"path": "[^"]*"' rec.json | head -1 | cut -d'"' -f4)
# a music bundle as --speech is refused in one line (its classes are the library's)
if "$m" recommend --speech ../work/music.h5 --library ../work/library.h5 "$voice" > /dev/null 2> wrongrec.err; then
  fail "recommend accepted a music bundle as --speech"
fi
grep -q "music model" wrongrec.err && [ "$(wc -l < wrongrec.err)" = 1 ] || fail "recommend's refusal: $(cat wrongrec.err)"
[ -f "$first" ] || fail "recommended track path '$first' does not resolve from $elsewhere"

# --- serve, from the same other folder: a track through the API ---
# a music bundle is no speech model: refused in one line before the server starts
if "$m" serve --speech ../work/music.h5 --library ../work/library.h5 --port 0 --db none --quiet > wrong.log 2>&1; then
  fail "serve accepted a music bundle as --speech"
fi
grep -q "music model" wrong.log || fail "serve's refusal of a music bundle as --speech: $(cat wrong.log)"
[ "$(wc -l < wrong.log)" = 1 ] || fail "serve's refusal is not one line: $(cat wrong.log)"
"$m" serve --speech ../work/speech.h5 --library ../work/library.h5 --port 0 --db none --threads 1 --quiet \
  > serve.log 2>&1 &
pid=$!
url=
for _ in $(seq 1 150); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*/' serve.log | head -1 || true)
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { cat serve.log; fail "melodic serve did not start"; }
  sleep 0.2
done
[ -n "$url" ] || { cat serve.log; fail "no address from melodic serve"; }
id=$(curl -sf "${url}api/tracks?limit=1" | grep -o '"id":"[0-9a-f]\{64\}"' | head -1 | cut -d'"' -f4)
[ -n "$id" ] || fail "no track id from ${url}api/tracks"
code=$(curl -s -o track.mp3 -w '%{http_code}' "${url}api/tracks/$id/audio")
[ "$code" = 200 ] || fail "GET /api/tracks/$id/audio answered $code"
[ -s track.mp3 ] || fail "the track came back empty"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url")
[ "$code" = 200 ] || fail "GET / (the page) answered $code"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
echo "test-install: classify, index, recommend and serve work from $elsewhere"

# --- export finds results where `make run` puts them (results/<name>), or --results DIR ---
cd "$work"
mkdir -p results/install_music other
echo '{"marker": "from results/install_music"}' > results/install_music/summary.json
"$m" export music.yaml --model forest -o m1.h5 -j 2 2> e1.log || { cat e1.log; fail "export with results/<name>"; }
h5dump -d /metrics m1.h5 | grep -q "from results/install_music" || fail "the bundle carries no /metrics from results/install_music"
echo '{"marker": "from --results"}' > other/summary.json
(cd "$elsewhere" && "$m" export ../work/music.yaml --model forest -o ../work/m2.h5 -j 2 --results ../work/other 2> ../work/e2.log) ||
  { cat e2.log; fail "export --results DIR"; }
h5dump -d /metrics m2.h5 | grep -q "from --results" || fail "the bundle carries no /metrics from --results DIR"
if "$m" export music.yaml --model forest -o m3.h5 --results nowhere 2> e3.log; then fail "export --results nowhere succeeded"; fi
grep -q "nowhere" e3.log || fail "export --results nowhere: $(cat e3.log)"

# --- a binary without share/melodic names every path it tried ---
mkdir -p "$tmp/bare/bin"
cp "$m" "$tmp/bare/bin/melodic"
if "$tmp/bare/bin/melodic" recommend --speech speech.h5 --library library.h5 "$voice" 2> bare.err; then
  fail "a binary without share/melodic found a VA table"
fi
grep -q "$tmp/bare/share/melodic/configs/recommend/default.yaml" bare.err || fail "error names no path tried: $(cat bare.err)"
MELODIC_SHARE=$prefix/share/melodic "$tmp/bare/bin/melodic" recommend --speech speech.h5 --library library.h5 "$voice" -n 2 > /dev/null ||
  fail "MELODIC_SHARE did not point the bare binary at the table"

# --- the model root: from the checkout for the build tree, named for an installed binary ---
if [ -f "$models/efficientat/mn04_as_mAP_432.pt" ]; then
  head -9 speech.csv > speech8.csv
  sed -e "s|$work/speech.csv|$work/speech8.csv|" -e 's/features: \[logmel_stats\]/features: [mn04_embedding]/' \
    -e 's/name: install_speech/name: install_mn04/' speech.yaml > mn04.yaml
  MELODIC_MODELS=$models "$m" export mn04.yaml --model forest -o mn04.h5 -j 2 > e4.log 2>&1 || { cat e4.log; fail "export with mn04 weights"; }
  "$root/$build/melodic" classify mn04.h5 "$voice" > /dev/null 2> c1.err ||
    { cat c1.err; fail "the build-tree binary did not find the weights from $work (model root from the checkout)"; }
  if "$m" classify mn04.h5 "$voice" > /dev/null 2> c2.err; then fail "the installed binary found weights without a model root"; fi
  grep -q "$prefix/share/melodic/models" c2.err || fail "model root error names no absolute root: $(cat c2.err)"
  MELODIC_MODELS=$models "$m" classify mn04.h5 "$voice" > /dev/null || fail "MELODIC_MODELS was not honoured"
else
  echo "test-install: model-root checks skipped (no $models/efficientat/mn04_as_mAP_432.pt)"
fi
echo "test-install: passed"
