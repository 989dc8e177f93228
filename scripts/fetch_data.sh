#!/usr/bin/env bash
# Download RAVDESS (Zenodo record 1188976) and the 4Q music emotion set
# (Panda et al. 2018, University of Coimbra) into the data root, for machines
# with internet. Usage: scripts/fetch_data.sh [DATA_ROOT]   (default: ./data)
# The 4Q archive holds 30 s clips; this project's copy uses their middle 10 s
# (see ../shared/data/music-4q/README.md) — run with CUT_10S=1 to do the same
# (needs ffmpeg).
set -euo pipefail
root=${1:-${MELODIC_DATA:-data}}
mkdir -p "$root"
need() { command -v "$1" >/dev/null || { echo "fetch_data: '$1' is needed" >&2; exit 1; }; }
need curl; need unzip
if [ ! -d "$root/ravdess/Actor_01" ]; then
  echo "downloading RAVDESS speech (about 200 MB)..."
  curl -fL --retry 3 -o "$root/ravdess.zip" \
    "https://zenodo.org/record/1188976/files/Audio_Speech_Actors_01-24.zip?download=1" \
    || { echo "fetch_data: cannot reach zenodo.org (no internet?)" >&2; exit 1; }
  mkdir -p "$root/ravdess"
  unzip -q "$root/ravdess.zip" -d "$root/ravdess"
  rm -f "$root/ravdess.zip"
fi
if [ ! -d "$root/music-4q/Q1" ]; then
  echo "downloading the 4Q audio emotion dataset..."
  curl -fL --retry 3 -o "$root/4q.zip" "http://mir.dei.uc.pt/resources/MER_audio_taffc_dataset.zip" \
    || { echo "fetch_data: cannot reach mir.dei.uc.pt (no internet?)" >&2; exit 1; }
  tmp=$(mktemp -d)
  unzip -q "$root/4q.zip" -d "$tmp"
  mkdir -p "$root/music-4q"
  for q in Q1 Q2 Q3 Q4; do
    src=$(find "$tmp" -type d -name "$q" | head -1)
    [ -n "$src" ] && cp -r "$src" "$root/music-4q/$q"
  done
  meta=$(find "$tmp" -iname '*metadata*.csv' | head -1)
  if [ -n "$meta" ]; then
    echo "note: the release's metadata CSV is at $meta; convert it to music-4q/metadata.csv"
    echo "      with columns song,artist,title,quadrant (see configs/datasets/music4q.yaml)"
  fi
  if [ "${CUT_10S:-0}" = 1 ]; then
    need ffmpeg
    for f in "$root"/music-4q/Q*/*.mp3; do
      ffmpeg -loglevel error -y -ss 10 -t 10 -i "$f" -c copy "$f.tmp.mp3" && mv "$f.tmp.mp3" "$f"
    done
  fi
  rm -rf "$tmp" "$root/4q.zip"
fi
echo "data ready under $root (set MELODIC_DATA=$root if it is not ./data)"
