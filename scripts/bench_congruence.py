#!/usr/bin/python3
"""bench_congruence.py — end-to-end emotional congruence of the recommender.

Speech side: the speaker-independent out-of-fold probabilities of one or
more speech experiments (results.h5: /models/<model>/folds/*/proba; default
the paper's mn04 MLP, logistic regression on mn04 layers, the same calibrated),
one listener per RAVDESS clip (1,440). Music side: the artist-held-out
out-of-fold probabilities of music_layers_artist (/models/ensemble/folds/*),
one library track per 4Q clip (900), with artists from metadata.csv.
Congruence: the fraction of a listener's top-10 tracks whose annotated 4Q
quadrant is the quadrant of the speaker's true emotion under the truth table

    neutral, calm -> Q4   happy, surprised -> Q1   angry, fearful, disgust -> Q2   sad -> Q3

averaged over listeners; shown beside chance (0.25) and the oracle (1.0).
Ours: `melodic recommend --batch` (policy match, configs/recommend/default.yaml,
NRC VAD points, listener quadrant by speech probability mass, MMR). Reference: the
paper's rule in numpy (top speech label -> quadrant by the truth table ->
tracks whose top music label is that quadrant, most confident first), run on
the same probabilities in one run; times are printed. Also: ours with true
labels on both sides (the ceiling the valence-arousal mapping allows), and
the issue's scikit-learn pipeline measured here (mn04 embeddings extracted by
melodic; scikit-learn MLP for speech by actor folds, SVC for music by artist
folds; the paper's rule) unless --no-sklearn.

usage: /usr/bin/python3 scripts/bench_congruence.py [--speech DIR[:MODEL]]... [--music DIR]
       [--bin build/melodic] [--data ../shared/data] [--music-model ensemble] [-n 10] [--config C]
       [--temperature T]... [--explore P]... [--epsilon E]... [--split-actors]
Missing result folders are produced with `melodic run` first (a few minutes).
"""
import argparse
import csv
import os
import re
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


T_START = time.perf_counter()


def progress(msg):
    """A progress line on stderr (stdout is the result, committed as results/congruence.txt)."""
    print(f"bench_congruence [{time.perf_counter() - T_START:5.0f} s] {msg}", file=sys.stderr, flush=True)


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
    progress(f"running {exp} -> {out} (once; its progress follows)")
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


def variety(tracks, n_lib):
    """Catalog coverage (share of the library in the union of all top-n lists) and mean per-listener
    novelty (mean over a listener's tracks of -log2 of the share of listeners who got that track)."""
    rows = [r[r >= 0] for r in tracks]
    counts = np.bincount(np.concatenate(rows), minlength=n_lib) if rows else np.zeros(n_lib)
    pop = counts / max(len(rows), 1)
    nov = np.mean([np.mean(-np.log2(pop[r])) if len(r) else 0.0 for r in rows])
    return float((counts > 0).mean()), float(nov)


def run_ours(bin_, lib, sp, slabels, n, tmp, tag, config=None, temperature=None, extra=None):
    batch, out = os.path.join(tmp, f"batch_{tag}.h5"), os.path.join(tmp, f"out_{tag}.h5")
    with h5py.File(batch, "w") as f:
        f["proba"] = sp.astype(np.float32)
        f["labels"] = np.array(slabels, dtype=h5py.string_dtype())
    t0 = time.perf_counter()
    cmd = [bin_, "recommend", "--library", lib, "--batch", batch, "-o", out, "-n", str(n)]
    if config:
        cmd += ["--config", config]
    if temperature:
        cmd += ["--temperature", str(temperature)]
    cmd += extra or []
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


def sklearn_baseline(bin_, tmp):
    """The issue's scikit-learn pipeline on mn04 embeddings: MLP for speech
    (GroupKFold by actor), SVM for music (StratifiedGroupKFold by artist, as
    artist5), scaler fitted per fold, out-of-fold probabilities."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    def table(exp, name, sets):
        out = os.path.join(tmp, name)
        subprocess.run([bin_, "extract", exp, "-o", out, "-j", "2", "--set", f"features=[{sets}]"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with h5py.File(out, "r") as f:
            return (f["features"][:], f["labels"][:].astype(int), f["groups"][:],
                    [s(x) for x in f["label_names"][:]], [s(x) for x in f["paths"][:]])

    def oof_sk(X, y, splits, make):
        P = np.zeros((len(y), y.max() + 1))
        for tr, te in splits:
            sc = StandardScaler().fit(X[tr])
            P[te] = make().fit(sc.transform(X[tr]), y[tr]).predict_proba(sc.transform(X[te]))
        return P

    progress("scikit-learn baseline: mn04 embeddings of RAVDESS (melodic extract)")
    Xs, ys, gs, sl, _ = table("experiments/table2_speech_mn04_speaker.yaml", "speech_mn04.h5", "mn04_embedding")
    progress("scikit-learn baseline: mn04 embeddings of the 4Q music (melodic extract)")
    Xm, ym, gm, ml, mpaths = table("experiments/music_beyond_artist.yaml", "music_mn04.h5", "mn04_embedding")
    progress("scikit-learn baseline: MLP (speech) and SVC (music), 5 folds each")
    t0 = time.perf_counter()
    Ps = oof_sk(Xs, ys, GroupKFold(5).split(Xs, ys, gs),
                lambda: MLPClassifier((256,), early_stopping=True, max_iter=200, random_state=0))
    Pm = oof_sk(Xm, ym, StratifiedGroupKFold(5).split(Xm, ym, gm),
                lambda: SVC(probability=True, random_state=0))
    return Ps, ys, sl, Pm, ym, ml, time.perf_counter() - t0


def quadrant_accuracy(sp, s_true, slabels):
    """Fraction of listeners whose most probable quadrant (probability summed per quadrant) is the true one."""
    Q = ["Q1", "Q2", "Q3", "Q4"]
    M = np.array([[TRUTH[l] == q for q in Q] for l in slabels], float)
    qt = np.array([Q.index(TRUTH[slabels[t]]) for t in s_true])
    return float(np.mean((sp @ M).argmax(1) == qt))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speech", action="append", default=None,
                    help="DIR[:MODEL] of a speaker-independent speech experiment (repeatable; default: the "
                         "paper's mn04 MLP, the mn04-layer ensemble and the calibrated ensemble)")
    ap.add_argument("--music", default="results/music_layers_artist")
    ap.add_argument("--music-model", default="ensemble")
    ap.add_argument("--bin", default="build/melodic")
    ap.add_argument("--data", default=os.environ.get("MELODIC_DATA", "../shared/data"))
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--config", default=None, help="recommend config (default configs/recommend/default.yaml)")
    ap.add_argument("--temperature", type=float, action="append", default=None,
                    help="also run ours with this exploration temperature (repeatable): congruence, coverage, novelty")
    ap.add_argument("--explore", type=float, action="append", default=None,
                    help="also run ours with this wider-pick share (melodic recommend --explore, repeatable)")
    ap.add_argument("--epsilon", type=float, action="append", default=None,
                    help="also run ours with this score tier (melodic recommend --epsilon, repeatable)")
    ap.add_argument("--split-actors", action="store_true",
                    help="for each variety run also show odd- and even-numbered RAVDESS actors apart (e.g. to "
                         "choose a parameter on one half and report the other)")
    ap.add_argument("--no-sklearn", action="store_true", help="skip the scikit-learn baseline (extracts mn04 "
                    "embeddings of both datasets, about a minute)")
    a = ap.parse_args()
    specs = a.speech or ["results/table2_speech_mn04_speaker:mlp", "results/speech_layers_speaker:logreg",
                         "results/speech_calibrated_speaker:logreg"]
    ensure_run(a.bin, f"experiments/{os.path.basename(a.music.rstrip('/'))}.yaml", a.music)
    mp, m_true, mnames, mpaths = oof(os.path.join(a.music, "results.h5"), a.music_model)
    if sorted(mnames) != ["Q1", "Q2", "Q3", "Q4"]:
        sys.exit(f"music labels are not the 4Q quadrants: {mnames}")
    artist = {}
    meta = os.path.join(a.data, "music-4q", "metadata.csv")
    if os.path.exists(meta):
        for row in csv.DictReader(open(meta, encoding="utf-8")):
            artist[row["song"]] = row["artist"]
    artists = [artist.get(os.path.splitext(os.path.basename(p))[0], "") for p in mpaths]
    print(f"music:  {a.music} ({a.music_model}), {len(mp)} tracks, artist-held-out out-of-fold; "
          f"accuracy {np.mean(mp.argmax(1) == m_true):.3f}")
    print("truth table: neutral, calm -> Q4; happy, surprised -> Q1; angry, fearful, disgust -> Q2; sad -> Q3")
    print(f"congruence of the top-{a.n}: the fraction of a listener's tracks in the quadrant of the speaker's "
          f"true emotion (chance 0.250, oracle 1.000)\n")
    rows = []
    var_lines = []
    with tempfile.TemporaryDirectory() as tmp:
        lib = os.path.join(tmp, "lib.h5")
        write_library(lib, mp, m_true, mnames, mpaths, artists, mp)
        lib_true = os.path.join(tmp, "lib_true.h5")
        onehot_m = np.eye(len(mnames), dtype=np.float32)[m_true]
        write_library(lib_true, onehot_m, m_true, mnames, mpaths, artists, onehot_m)
        for k, spec in enumerate(specs):
            sdir, _, smodel = spec.partition(":")
            smodel = smodel or "mlp"
            progress(f"speech model {k + 1}/{len(specs)}: {spec} — {a.n}-track playlists for every listener")
            ensure_run(a.bin, f"experiments/{os.path.basename(sdir.rstrip('/'))}.yaml", sdir)
            sp, s_true, slabels, s_paths = oof(os.path.join(sdir, "results.h5"), smodel)
            missing = [l for l in slabels if l not in TRUTH]
            if missing:
                sys.exit(f"{sdir}: labels outside the truth table: {missing}")
            t0 = time.perf_counter()
            ref = reference(sp, slabels, mp, mnames, a.n)
            t_ref = time.perf_counter() - t0
            ours, t_ours = run_ours(a.bin, lib, sp, slabels, a.n, tmp, f"pred{k}", a.config)
            c_ref, per_ref = congruence(ref, s_true, slabels, m_true, mnames)
            c_ours, per = congruence(ours, s_true, slabels, m_true, mnames)
            onehot_s = np.eye(len(slabels), dtype=np.float32)[s_true]
            ceil, _ = run_ours(a.bin, lib_true, onehot_s, slabels, a.n, tmp, f"true{k}", a.config)
            c_ceil, _ = congruence(ceil, s_true, slabels, m_true, mnames)
            name = os.path.basename(sdir.rstrip('/')) + ":" + smodel
            cov, nov = variety(ours, len(mp))
            var_lines.append(f"{name:46s}  T=0     congruence {c_ours:.3f}  coverage {cov:.3f}  novelty {nov:5.2f} bits  "
                             f"distinct {int(round(cov * len(mp)))}")
            for T in a.temperature or []:
                ex, _ = run_ours(a.bin, lib, sp, slabels, a.n, tmp, f"T{k}_{T}", a.config, T)
                c_ex, _ = congruence(ex, s_true, slabels, m_true, mnames)
                cov, nov = variety(ex, len(mp))
                var_lines.append(f"{name:46s}  T={T:<5g} congruence {c_ex:.3f}  coverage {cov:.3f}  novelty {nov:5.2f} bits  "
                                 f"distinct {int(round(cov * len(mp)))}")
            runs = [(f"explore={x:g}", ["--explore", str(x)]) for x in a.explore or []] + \
                [(f"epsilon={x:g}", ["--epsilon", str(x)]) for x in a.epsilon or []]
            if a.split_actors and runs:
                runs.insert(0, ("T=0", []))
            actor = np.array([int(m.group(1)) if m else 0 for m in
                              (re.search(r"Actor_(\d+)", p) for p in s_paths)])
            for label, extra in runs:
                ex, _ = run_ours(a.bin, lib, sp, slabels, a.n, tmp, f"V{k}_{label}", a.config, None, extra)
                if label != "T=0":
                    c_ex, _ = congruence(ex, s_true, slabels, m_true, mnames)
                    cov, nov = variety(ex, len(mp))
                    var_lines.append(f"{name:46s}  {label:<7s} congruence {c_ex:.3f}  coverage {cov:.3f}  "
                                     f"novelty {nov:5.2f} bits  distinct {int(round(cov * len(mp)))}")
                if a.split_actors:
                    halves = []
                    for half, m in (("odd", actor % 2 == 1), ("even", (actor % 2 == 0) & (actor > 0))):
                        c_h, _ = congruence(ex[m], s_true[m], slabels, m_true, mnames)
                        cov_h, _ = variety(ex[m], len(mp))
                        halves.append(f"{half} actors ({m.sum()}) congruence {c_h:.3f} coverage {cov_h:.3f}")
                    var_lines.append(f"{'':46s}    {label}: " + "; ".join(halves))
            with h5py.File(os.path.join(sdir, "results.h5"), "r") as f:
                gn = int(f.attrs.get("group_norm", 0))
            rows.append((f"{os.path.basename(sdir.rstrip('/'))}:{smodel}" + (" (calibrated)" if gn else ""),
                         np.mean(sp.argmax(1) == s_true), quadrant_accuracy(sp, s_true, slabels), c_ref, c_ours, c_ceil,
                         t_ref, t_ours))
            if k == 0 or k == len(specs) - 1:
                print(f"per true speech emotion, {rows[-1][0]} (paper's rule / ours):")
                for j, l in enumerate(slabels):
                    m = s_true == j
                    print(f"  {l:10s} -> {TRUTH[l]}  n={m.sum():4d}  {per_ref[m].mean():.3f} / {per[m].mean():.3f}")
                print()
    if not a.no_sklearn:
        with tempfile.TemporaryDirectory() as tmp:
            Ps, ys, sl, Pm, ym, ml, t_sk = sklearn_baseline(a.bin, tmp)
            c_sk, _ = congruence(reference(Ps, sl, Pm, ml, a.n), ys, sl, ym, ml)
        rows.insert(0, ("scikit-learn: mn04 MLP speech, mn04 SVM music", np.mean(Ps.argmax(1) == ys),
                        quadrant_accuracy(Ps, ys, sl), c_sk, float("nan"), float("nan"), 0, 0))
        print(f"scikit-learn baseline (the issue's): speech MLP acc {np.mean(Ps.argmax(1) == ys):.3f}, music SVM acc "
              f"{np.mean(Pm.argmax(1) == ym):.3f}; its congruence is in the first row (the paper's rule column)\n")
        progress(f"scikit-learn fits took {t_sk:.1f} s")
    w = max(len(r[0]) for r in rows)
    print(f"{'speech model (speaker-independent)':{w}s}  acc    quad.acc  paper's rule  ours (match)  ours, true labels")
    for r in rows:
        ours = "  -  " if np.isnan(r[4]) else f"{r[4]:.3f}"
        ceil = "  -  " if np.isnan(r[5]) else f"{r[5]:.3f}"
        print(f"{r[0]:{w}s}  {r[1]:.3f}  {r[2]:.3f}     {r[3]:.3f}         {ours}         {ceil}")
    print(f"\nvariety of ours (match) over the {len(mp)}-track library: coverage = share of the library in the union "
          f"of all listeners' top-{a.n}; novelty = mean -log2(share of listeners given the track); "
          f"T = exploration temperature (melodic recommend --temperature, one seed per listener)")
    for line in var_lines:
        print(line)
    # times vary run to run: stderr, so that results/congruence.txt regenerates byte for byte
    progress(f"time for {len(sp)} playlists (last model): paper's rule in numpy {rows[-1][6]:.3f} s, ours "
             f"{rows[-1][7]:.3f} s (process start and library load included)")


if __name__ == "__main__":
    main()
