#!/usr/bin/env bash
# tests/browser/run.sh — the web page in Debian's chromium (make test-browser).
# Installs what it needs (apt chromium, nodejs, npm; npm ci here: playwright-core
# 1.49, which runs on Debian 12's node 18), starts `melodic serve`
# on a free port with the default bundles when `make serve` has built them
# (build/models), else with small ones made here from a slice of the data
# (logmel_stats + random forest: quick, enough to drive the page; the library
# indexed in 3 s windows, so tracks have trajectories), feeds a
# RAVDESS clip as the microphone and runs page.test.js; the screenshot goes to
# build/web_screenshot.png (tests never write tracked files: copy it to
# results/web_screenshot.png on purpose when the page changes). Exits 0 with a message when the data is absent.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
data=${MELODIC_DATA:-../shared/data}
if [ ! -d "$data/ravdess" ] || [ ! -d "$data/music-4q" ]; then
  echo "test-browser: skipped (no RAVDESS / 4Q data under $data)"
  exit 0
fi
data=$(cd "$data" && pwd)
bin=${MELODIC_BIN:-build/melodic}
[ -x "$bin" ] || make -j2 all

# --- tools ---
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node > /dev/null || need+=(nodejs)
command -v npm > /dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "test-browser: installing ${need[*]}"
  SUDO=$( [ "$(id -u)" = 0 ] || echo sudo )
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi

# --- models ---
work=build/browser
mkdir -p "$work" results
calibrated=
if [ -f build/models/speech.h5 ] && [ -f build/models/library.h5 ]; then
  speech=build/models/speech.h5; library=build/models/library.h5
  [ -f build/models/speech_calibrated.h5 ] && calibrated=build/models/speech_calibrated.h5
else
  speech=$work/speech.h5; library=$work/library.h5
  # the page draws a track's trajectory: 4Q's clips are 10 s long, so windows of 3 s every
  # 1.5 s (shorter than the model's training clips, enough to draw); a library made
  # otherwise (before windowed indexing, or with 10 s windows: one point each) is made again
  if [ -f "$library" ] && ! /usr/bin/python3 -c "import h5py, sys; sys.exit(h5py.File(sys.argv[1], 'r').attrs.get('window_s') != 3)" "$library"; then
    rm -f "$library"
  fi
  export EXPECT_TRAJECTORY=1
  if [ ! -f "$speech" ]; then
    # 4 actors, every clip: labels from the RAVDESS file name (emotion = 3rd field)
    {
      echo "path,label,group"
      for a in 01 02 03 04; do
        for f in "$data"/ravdess/Actor_$a/*.flac; do
          e=$(basename "$f" | cut -d- -f3)
          case $e in 01) l=neutral;; 02) l=calm;; 03) l=happy;; 04) l=sad;; 05) l=angry;;
                     06) l=fearful;; 07) l=disgust;; 08) l=surprised;; *) continue;; esac
          echo "$f,$l,$a"
        done
      done
    } > "$work/speech.csv"
    cat > "$work/speech.yaml" <<EOF
name: browser_speech
seed: 1
cache: $root/$work/cache
dataset: {type: csv, manifest: $root/$work/speech.csv}
features: [logmel_stats]
models:
  - {name: forest, model: rf, params: {n_estimators: 50}}
EOF
    "$bin" export "$work/speech.yaml" --model forest -o "$speech" -j 2
  fi
  # the same with per-speaker calibration from 5 clips: the page must show its progress
  calibrated=$work/speech_cal.h5
  if [ ! -f "$calibrated" ]; then
    "$bin" export "$work/speech.yaml" --model forest -o "$calibrated" -j 2 \
      --set 'preprocessing={group_norm: {clips: 5}, scaler: standard}'
  fi
  if [ ! -f "$library" ]; then
    # 8 tracks per quadrant, artist and title from metadata.csv
    {
      echo "path,label,artist,title"
      for q in Q1 Q2 Q3 Q4; do
        for f in $(ls "$data/music-4q/$q" | grep -i '\.mp3$' | head -8); do
          s=${f%.*}
          meta=$(grep "^$s," "$data/music-4q/metadata.csv" | head -1 | tr -d '"' || true)
          artist=$(echo "$meta" | cut -d, -f2); title=$(echo "$meta" | cut -d, -f3)
          echo "$data/music-4q/$q/$f,$q,${artist:-unknown},${title:-$s}"
        done
      done
    } > "$work/music.csv"
    cut -d, -f1,2 "$work/music.csv" > "$work/music_train.csv"
    cat > "$work/music.yaml" <<EOF
name: browser_music
seed: 1
cache: $root/$work/cache
dataset: {type: csv, manifest: $root/$work/music_train.csv}
features: [logmel_stats]
models:
  - {name: forest, model: rf, params: {n_estimators: 50}}
EOF
    "$bin" export "$work/music.yaml" --model forest -o "$work/music.h5" -j 2
    "$bin" index "$work/music.h5" "$work/music.csv" -o "$library" -j 2 --quiet --window 3 --hop 1.5
  fi
fi

# --- the microphone: a RAVDESS clip as 16-bit WAV ---
voice=$root/$work/voice.wav
clip="$data/ravdess/Actor_05/03-01-03-02-01-01-05.flac"   # happy, strong intensity
[ -f "$clip" ] || clip=$(ls "$data"/ravdess/Actor_05/*.flac | head -1)
/usr/bin/python3 - "$clip" "$voice" <<'EOF'
import sys, numpy as np, torchaudio
from scipy.io import wavfile
x, sr = torchaudio.load(sys.argv[1])
x = x.mean(0).numpy()
wavfile.write(sys.argv[2], sr, np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16))
EOF

# --- server on a free port ---
log=$work/serve.log
cal_args=()
if [ -n "$calibrated" ]; then cal_args=(--speech-calibrated "$calibrated"); export CALIBRATED=1; fi
rm -f "$work"/feedback.sqlite*   # a new user each run: calibration starts from zero
"$bin" serve --speech "$speech" --library "$library" "${cal_args[@]}" --port 0 --db "$work/feedback.sqlite" --quiet > "$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
url=
for _ in $(seq 1 300); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*/' "$log" | head -1 || true)
  [ -n "$url" ] && break
  kill -0 $pid 2>/dev/null || { cat "$log"; echo "test-browser: the server did not start"; exit 1; }
  sleep 0.2
done
[ -n "$url" ] || { cat "$log"; echo "test-browser: no address from the server"; exit 1; }
echo "test-browser: $url (speech $speech, library $library)"
UPLOAD_COPY=$work/uploaded.wav node tests/browser/page.test.js "$url" "$voice" build/web_screenshot.png
echo "test-browser: passed"
