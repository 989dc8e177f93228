#!/usr/bin/python3
"""bench_congruence.py — end-to-end emotional congruence of the recommender.

Speech side: the speaker-independent out-of-fold probabilities of
table2_speech_mn04_speaker (results.h5: /models/mlp/folds/*/proba), one
listener per RAVDESS clip (1,440). Music side: the artist-held-out
out-of-fold probabilities of table3_music_artist (/models/ensemble/folds/*),
one library track per 4Q clip (900), with artists from metadata.csv.
Congruence: the fraction of a listener's top-10 tracks whose annotated 4Q
quadrant is the quadrant of the speaker's true emotion under the truth table

    neutral, calm -> Q4   happy, surprised -> Q1   angry, fearful, disgust -> Q2   sad -> Q3

averaged over listeners; shown beside chance (0.25) and the oracle (1.0).
Ours: `melodic recommend --batch` (policy match, configs/recommend/default.yaml,
NRC VAD points, probability-weighted listener point, MMR). Reference: the
paper's rule in numpy (top speech label -> quadrant by the truth table ->
tracks whose top music label is that quadrant, most confident first), the
"scikit-learn baseline" of the issue. Both run on the same probabilities in one
run; times and the ratio are printed. Also: ours with true labels on both
sides (the ceiling the valence-arousal mapping allows).

usage: /usr/bin/python3 scripts/bench_congruence.py [--speech DIR] [--music DIR]
       [--bin build/melodic] [--data ../shared/data] [--music-model ensemble] [-n 10]
Missing result folders are produced with `melodic run` first (a few minutes).
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

TRUTH = {"neutral": "Q4", "calm": "Q4", "happy": "Q1", "surprised": "Q1",
         "angry": "Q2", "fearful": "Q2", "disgust": "Q2", "sad": "Q3"}


def s(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def oof(path, model):
    """Out-of-fold probabilities in dataset order, labels, label names, paths."""
    with h5py.File(path, "r") as f:
        names = [s(x) for x in f["dataset/label_names"][:]]
        labels = f["dataset/labels"][:].astype(int)
        paths = [s(x) for x in f["dataset/paths"][:]]
        proba = np.full((len(labels), len(names)), np.nan, np.float32)
        for k in f[f"models/{model}/folds"]:
            g = f[f"models/{model}/folds/{k}"]
            proba[g["test_index"][:]] = g["proba"][:]
    if np.isnan(proba).any():
        sys.exit(f"{path}: some clips have no out-of-fold prediction for {model}")
    return proba, labels, names, paths


def ensure_run(bin_, exp, out):
    if os.path.exists(os.path.join(out, "results.h5")):
        return
    print(f"running {exp} -> {out} (once)", flush=True)
    subprocess.run([bin_, "run", exp, "-o", out, "-j", "2", "--quiet"], check=True)


def write_library(path, proba, labels, names, paths, artists, emb):
    n, k = proba.shape
    centres = {"Q1": (0.5, 0.5), "Q2": (-0.5, 0.5), "Q3": (-0.5, -0.5), "Q4": (0.5, -0.5)}
    cva = np.array([centres[c] for c in names], np.float32)
    st = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "melodic-library"
        f.attrs["format_version"] = np.int64(1)
        f.attrs["model"] = "bench"
        f.attrs["bundle_sha256"] = ""
        f["classes/names"] = np.array(names, dtype=st)
        f["classes/va"] = cva
        f["tracks/path"] = np.array(paths, dtype=st)
        f["tracks/id"] = np.array([f"{i:064x}" for i in range(n)], dtype=st)
        f["tracks/artist"] = np.array(artists, dtype=st)
        f["tracks/title"] = np.array([os.path.basename(p) for p in paths], dtype=st)
        f["tracks/true_label"] = np.array([names[l] for l in labels], dtype=st)
        f["tracks/size"] = np.zeros(n, np.int64)
        f["tracks/mtime"] = np.zeros(n, np.int64)
        f["tracks/duration"] = np.full(n, 10.0)
        f["tracks/proba"] = proba.astype(np.float32)
        f["tracks/embedding"] = emb.astype(np.float32)


def run_ours(bin_, lib, sp, slabels, n, tmp, tag, config=None):
    batch, out = os.path.join(tmp, f"batch_{tag}.h5"), os.path.join(tmp, f"out_{tag}.h5")
    with h5py.File(batch, "w") as f:
        f["proba"] = sp.astype(np.float32)
        f["labels"] = np.array(slabels, dtype=h5py.string_dtype())
    t0 = time.perf_counter()
    cmd = [bin_, "recommend", "--library", lib, "--batch", batch, "-o", out, "-n", str(n)]
    if config:
        cmd += ["--config", config]
    subprocess.run(cmd, check=True)
    dt = time.perf_counter() - t0
    with h5py.File(out, "r") as f:
        return f["tracks"][:], dt


def reference(sp, slabels, mp, mnames, n):
    """The paper's rule: top speech label -> truth-table quadrant -> most confident tracks of it."""
    top_m = mp.argmax(1)
    conf = mp.max(1)
    by_q = {q: np.where(top_m == mnames.index(q))[0] for q in mnames}
    order = {q: idx[np.argsort(-conf[idx], kind="stable")] for q, idx in by_q.items()}
    out = np.full((len(sp), n), -1, np.int32)
    for i, p in enumerate(sp):
        q = TRUTH[slabels[int(np.argmax(p))]]
        ids = order[q][:n]
        out[i, :len(ids)] = ids
    return out


def congruence(tracks, s_true, slabels, m_true, mnames):
    per = []
    for i, row in enumerate(tracks):
        row = row[row >= 0]
        want = TRUTH[slabels[s_true[i]]]
        per.append(np.mean([mnames[m_true[t]] == want for t in row]) if len(row) else 0.0)
    return float(np.mean(per)), np.array(per)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speech", default="results/runs/table2_speech_mn04_speaker")
    ap.add_argument("--music", default="results/runs/table3_music_artist")
    ap.add_argument("--speech-model", default="mlp")
    ap.add_argument("--music-model", default="ensemble")
    ap.add_argument("--bin", default="build/melodic")
    ap.add_argument("--data", default=os.environ.get("MELODIC_DATA", "../shared/data"))
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--config", default=None, help="recommend config (default configs/recommend/default.yaml)")
    a = ap.parse_args()
    ensure_run(a.bin, "experiments/table2_speech_mn04_speaker.yaml", a.speech)
    ensure_run(a.bin, "experiments/table3_music_artist.yaml", a.music)
    sp, s_true, slabels, _ = oof(os.path.join(a.speech, "results.h5"), a.speech_model)
    mp, m_true, mnames, mpaths = oof(os.path.join(a.music, "results.h5"), a.music_model)
    missing = [l for l in slabels if l not in TRUTH]
    if missing or sorted(mnames) != ["Q1", "Q2", "Q3", "Q4"]:
        sys.exit(f"labels outside the truth table: {missing} / music {mnames}")
    artist = {}
    meta = os.path.join(a.data, "music-4q", "metadata.csv")
    if os.path.exists(meta):
        for row in csv.DictReader(open(meta, encoding="utf-8")):
            artist[row["song"]] = row["artist"]
    artists = [artist.get(os.path.splitext(os.path.basename(p))[0], "") for p in mpaths]

    print(f"speech: {a.speech} ({a.speech_model}), {len(sp)} listeners, speaker-independent out-of-fold; "
          f"accuracy {np.mean(sp.argmax(1) == s_true):.3f}")
    print(f"music:  {a.music} ({a.music_model}), {len(mp)} tracks, artist-held-out out-of-fold; "
          f"accuracy {np.mean(mp.argmax(1) == m_true):.3f}")
    print("truth table: neutral, calm -> Q4; happy, surprised -> Q1; angry, fearful, disgust -> Q2; sad -> Q3")
    with tempfile.TemporaryDirectory() as tmp:
        lib = os.path.join(tmp, "lib.h5")
        write_library(lib, mp, m_true, mnames, mpaths, artists, mp)
        t0 = time.perf_counter()
        ref = reference(sp, slabels, mp, mnames, a.n)
        t_ref = time.perf_counter() - t0
        ours, t_ours = run_ours(a.bin, lib, sp, slabels, a.n, tmp, "pred", a.config)
        c_ref, per_ref = congruence(ref, s_true, slabels, m_true, mnames)
        c_ours, per = congruence(ours, s_true, slabels, m_true, mnames)
        # ceiling of the mapping: true labels on both sides through our recommender
        onehot_s = np.eye(len(slabels), dtype=np.float32)[s_true]
        lib_true = os.path.join(tmp, "lib_true.h5")
        onehot_m = np.eye(len(mnames), dtype=np.float32)[m_true]
        write_library(lib_true, onehot_m, m_true, mnames, mpaths, artists, onehot_m)
        ceil, _ = run_ours(a.bin, lib_true, onehot_s, slabels, a.n, tmp, "true", a.config)
        c_ceil, per_ceil = congruence(ceil, s_true, slabels, m_true, mnames)
    print(f"\ncongruence of the top-{a.n} (fraction of tracks in the speaker's true quadrant):")
    print(f"  chance                                   0.250")
    print(f"  reference (paper's rule, numpy)          {c_ref:.3f}")
    print(f"  ours (melodic recommend, match)          {c_ours:.3f}")
    print(f"  ours with true labels on both sides      {c_ceil:.3f}   (the valence-arousal mapping's ceiling)")
    print(f"  oracle (truth table, true labels)        1.000")
    print("\nper true speech emotion (reference / ours / ours' ceiling):")
    for k, l in enumerate(slabels):
        m = s_true == k
        print(f"  {l:10s} -> {TRUTH[l]}  n={m.sum():4d}  {per_ref[m].mean():.3f} / {per[m].mean():.3f} / {per_ceil[m].mean():.3f}")
    print(f"\ntime for {len(sp)} playlists: reference {t_ref:.3f} s, ours {t_ours:.3f} s "
          f"(process start and library load included), ratio ours/reference {t_ours / max(t_ref, 1e-9):.2f}")


if __name__ == "__main__":
    main()
