#!/usr/bin/env bash
# fetch_weights.sh — download the official PANNs checkpoints (`make weights`).
#
# Cnn14_mAP=0.431.pth and Cnn14_16k_mAP=0.438.pth from Zenodo record 3987831
# (Kong et al., PANNs, 2020; CC BY 4.0) into <model root>/panns/, each checked
# against its published size and sha256 (as pinned by several public projects
# that verified them against Zenodo's md5). Model root: $MELODIC_MODELS, else
# ../shared/models when it exists, else ./models (as src/core/paths.c).
# Idempotent: verified files are not fetched again. Without network access it
# fails with a message saying what to copy where.
# If a file turns out to be in PyTorch's legacy (pre-zip) format, which
# src/io/ptload does not read, it is re-saved in zip format with
# /usr/bin/python3 + torch after verification; the official digest is kept in
# <file>.official-sha256 and the converted file's digest in <file>.sha256.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${MELODIC_MODELS:-}" ]; then root=$MELODIC_MODELS
elif [ -d ../shared/models ]; then root=../shared/models
else root=models; fi
dir=$root/panns
base=https://zenodo.org/records/3987831/files

# name  size  sha256
files=(
  "Cnn14_mAP=0.431.pth 327428481 0dc499e40e9761ef5ea061ffc77697697f277f6a960894903df3ada000e34b31"
  "Cnn14_16k_mAP=0.438.pth 358668570 e2ee543a27919542c2ea03eabaa70b24dcd4e6c8e05621de6b67a94e4c5058e6"
)

die() { echo "fetch_weights: $*" >&2; exit 1; }

mkdir -p "$dir" 2>/dev/null || die "cannot create $dir (read-only?): set MELODIC_MODELS to a writable folder"
[ -w "$dir" ] || die "$dir is not writable: set MELODIC_MODELS to a writable folder"

sha() { sha256sum "$1" | cut -d' ' -f1; }

verified() {   # file size sha → 0 when the file is the official one (or its zip re-save)
  local f=$1 size=$2 sum=$3
  [ -f "$f" ] || return 1
  if [ -f "$f.official-sha256" ] && [ -f "$f.sha256" ]; then
    [ "$(cat "$f.official-sha256")" = "$sum" ] && [ "$(sha "$f")" = "$(cat "$f.sha256")" ]
    return
  fi
  [ "$(stat -c %s "$f")" = "$size" ] && [ "$(sha "$f")" = "$sum" ]
}

to_zip() {     # re-save a legacy-format checkpoint in torch's zip format
  local f=$1 sum=$2
  [ "$(head -c 2 "$f" | od -An -tx1 | tr -d ' ')" = "504b" ] && return 0
  /usr/bin/python3 -c 'import torch' 2>/dev/null ||
    die "$f is a legacy (pre-zip) PyTorch file and /usr/bin/python3 has no torch to convert it (apt-get install python3-torch)"
  echo "converting $f to the zip format (legacy pickle file)"
  /usr/bin/python3 - "$f" <<'PY'
import sys, torch
src = sys.argv[1]
ck = torch.load(src, map_location='cpu')   # trusted: sha256 checked above
torch.save(ck, src + '.zip.tmp', _use_new_zipfile_serialization=True)
PY
  mv "$f.zip.tmp" "$f"
  echo "$sum" > "$f.official-sha256"
  sha "$f" > "$f.sha256"
}

fetch() {
  local url=$1 out=$2
  if command -v curl >/dev/null; then
    curl -fL --connect-timeout 20 --retry 2 -o "$out" "$url"
  elif command -v wget >/dev/null; then
    wget -q --timeout=20 -O "$out" "$url"
  else
    die "neither curl nor wget is installed"
  fi
}

for entry in "${files[@]}"; do
  read -r name size sum <<<"$entry"
  f=$dir/$name
  if verified "$f" "$size" "$sum"; then echo "ok: $f"; continue; fi
  [ -f "$f" ] && echo "fetch_weights: $f exists but does not match size $size / sha256 $sum: fetching again" >&2
  tmp=$f.part.$$
  trap 'rm -f "$tmp"' EXIT
  echo "downloading $name ($size bytes) into $dir"
  url=$base/$(printf '%s' "$name" | sed 's/=/%3D/g')?download=1
  if ! fetch "$url" "$tmp"; then
    rm -f "$tmp"
    die "download of $url failed (no network?). Fetch it elsewhere and copy it to $f (size $size, sha256 $sum)"
  fi
  got_size=$(stat -c %s "$tmp")
  [ "$got_size" = "$size" ] || { rm -f "$tmp"; die "$name: got $got_size bytes, expected $size"; }
  got_sum=$(sha "$tmp")
  [ "$got_sum" = "$sum" ] || { rm -f "$tmp"; die "$name: sha256 $got_sum, expected $sum"; }
  mv "$tmp" "$f"
  rm -f "$f.official-sha256" "$f.sha256"
  to_zip "$f" "$sum"
  echo "ok: $f"
done
