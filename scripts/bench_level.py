#!/usr/bin/python3
"""Level agreement of a speech bundle (issue 16): does the answer depend on
how loud the microphone is?

usage: scripts/bench_level.py BUNDLE.h5 [BUNDLE.h5 ...] [--actors 1-4] [--data DIR] [--bin build/melodic]

The clips of the chosen RAVDESS actors (default 1-4: 240 clips) are written
as float WAV at several levels: peak-normalised to -1 dBFS (a hot
microphone), turned down 30 dB (a quiet one), and every 10 dB between -20 and
+20 dB of the recording that does not clip. Each bundle classifies every
version (`melodic classify --json`). Reported per bundle:
  - level agreement: the share of clips given the same label at -1 dBFS peak
    and 30 dB below it (the issue's measurement; target >= 0.95);
  - the largest change of any class probability between the recording and
    any unclipped gain within +-20 dB (target <= 0.02);
  - the most frequent answer of the hot microphone.
Run with /usr/bin/python3 (numpy and torchaudio to decode the FLAC files;
the WAVs are written by hand).
"""
import argparse
import collections
import glob
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np


def read_audio(path):
    """Decode (FLAC) with torchaudio, Debian's python3-torchaudio; mono float32 and the rate."""
    import torchaudio
    x, sr = torchaudio.load(path)
    return x.mean(dim=0).numpy().astype(np.float32), int(sr)


def write_float_wav(path, x, sr):
    x = np.asarray(x, np.float32)
    data = x.tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, sr, sr * 4, 4, 32)   # IEEE float, mono
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt)
        f.write(b"data" + struct.pack("<I", len(data)) + data)


def classify(bin_, bundle, files):
    out = subprocess.run([bin_, "classify", bundle, *files, "--json", "-j", "2"], check=True,
                         capture_output=True, text=True).stdout
    rows = json.loads(out)
    return {os.path.basename(r["file"]): r for r in rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="+")
    ap.add_argument("--actors", default="1-4")
    ap.add_argument("--data", default=os.environ.get("MELODIC_DATA", "../shared/data"))
    ap.add_argument("--bin", default="build/melodic")
    a = ap.parse_args()
    lo, _, hi = a.actors.partition("-")
    actors = range(int(lo), int(hi or lo) + 1)
    clips = sorted(p for k in actors for p in glob.glob(os.path.join(a.data, "ravdess", f"Actor_{k:02d}", "*.*")))
    if not clips:
        sys.exit(f"bench_level: no RAVDESS clips under {a.data}/ravdess")
    gains = [-20, -10, 0, 10, 20]
    with tempfile.TemporaryDirectory() as tmp:
        versions = collections.defaultdict(dict)   # version -> clip -> path
        for p in clips:
            x, sr = read_audio(p)
            peak = float(np.max(np.abs(x))) or 1.0
            stem = os.path.splitext(os.path.basename(p))[0]
            hot = x * (10 ** (-1 / 20) / peak)
            for name, y in (("hot", hot), ("quiet", hot * 10 ** (-30 / 20))):
                q = os.path.join(tmp, f"{stem}.{name}.wav")
                write_float_wav(q, y, sr)
                versions[name][stem] = q
            for g in gains:
                y = x * 10 ** (g / 20)
                if np.max(np.abs(y)) >= 1.0:
                    continue   # clipping: outside the claim
                q = os.path.join(tmp, f"{stem}.g{g:+d}.wav")
                write_float_wav(q, y, sr)
                versions[f"g{g:+d}"][stem] = q
        print(f"bench_level: {len(clips)} clips of actors {a.actors}; versions: hot (-1 dBFS peak), quiet (30 dB "
              f"below), and gains {gains} dB where they do not clip", flush=True)
        for b in a.bundles:
            res = {v: classify(a.bin, b, list(m.values())) for v, m in versions.items()}
            def get(v, stem):
                return res[v].get(os.path.basename(versions[v][stem]))
            stems = sorted(versions["hot"])
            agree = np.mean([get("hot", s)["label"] == get("quiet", s)["label"] for s in stems])
            worst = 0.0
            for s in stems:
                if s not in versions["g+0"]:
                    continue
                ref = get("g+0", s)["proba"]
                for g in gains:
                    v = f"g{g:+d}"
                    if s in versions[v]:
                        pr = get(v, s)["proba"]
                        worst = max(worst, max(abs(pr[k] - ref[k]) for k in ref))
            top = collections.Counter(get("hot", s)["label"] for s in stems).most_common(1)[0]
            print(f"{b}: level agreement {agree:.3f} (target >= 0.95); largest probability change within "
                  f"+-20 dB {worst:.4f} (target <= 0.02); hot microphone's most frequent answer: "
                  f"{top[0]} ({top[1]} of {len(stems)})")


if __name__ == "__main__":
    main()
