#!/usr/bin/python3
"""bench_recommend.py — the recommender's cost against library size (issue 17).

For each size N (default 10,000, 100,000, 1,000,000) a library is made by
scripts/make_synthetic_library from a seed library (default: the 900 4Q
tracks with the artist-held-out probabilities of results/music_layers_artist,
as scripts/bench_congruence.py builds it, similarity vectors padded to 128
dimensions), then `melodic recommend --batch --timing` answers R listeners
(random speech probabilities over the 7 RAVDESS labels; policy match, then
regulate) in one process. Reported per size: file size, the library's open
time, microseconds per request (mean, slowest), requests not certified
exact, and the process's peak RSS (ru_maxrss of the child). Each size also
gets a line of per-request percentiles (wall p50/p99 and CPU-time p50/p99 of
the request's thread, which a loaded machine inflates less), the median of
--repeat runs; with --recall R, recall@10 of the first R requests against
`--exhaustive` (every track scored; slow at 10^6); with --cold, the open time
after evicting the file from the page cache (posix_fadvise DONTNEED).

usage: /usr/bin/python3 scripts/bench_recommend.py [--bin build/melodic] [--sizes 10000,100000,1000000]
       [--seed-library LIB.h5] [--music results/music_layers_artist] [--requests 1000] [--work DIR]
       [--repeat K] [--recall R] [--cold] [--shortlist K]
"""
import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LABELS = ["angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised"]


def seed_library(music, path):
    spec = importlib.util.spec_from_file_location("bc", os.path.join(HERE, "bench_congruence.py"))
    bc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bc)
    mp, mt, mn, paths = bc.oof(os.path.join(music, "results.h5"), "ensemble")
    bc.write_library(path, mp, mt, mn, paths, [f"artist{i // 3}" for i in range(len(mp))], mp)


def run(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, ru = os.wait4(p.pid, 0)[1:]
    out, err = p.stdout.read(), p.stderr.read()
    p.returncode = 0
    return err, ru.ru_maxrss / 1024.0


def percentiles(err):
    m = re.search(r"p50 ([\d.]+) us, p90 ([\d.]+) us, p99 ([\d.]+) us \(CPU time p50 ([\d.]+) us, p99 ([\d.]+) us\)", err)
    return [float(m.group(i)) for i in (1, 3, 4, 5)] if m else None


def evict(path):
    """Drop the file's pages from the page cache (clean pages only; other files untouched)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def recall(a, b):
    """Mean share of each exhaustive top-n list found in the index's list."""
    return float(np.mean([len(set(x[x >= 0]) & set(y[y >= 0])) / max(1, (x >= 0).sum()) for x, y in zip(a, b)]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build/melodic")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--seed-library", default=None)
    ap.add_argument("--music", default="results/music_layers_artist")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--work", default=None, help="folder for the libraries (kept; default a temporary one)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per size and policy for the percentile line (median)")
    ap.add_argument("--recall", type=int, default=0, help="recall@10 of the first R requests against --exhaustive")
    ap.add_argument("--cold", action="store_true", help="also time opening with the file evicted from the page cache")
    ap.add_argument("--shortlist", type=int, default=0, help="melodic recommend --shortlist (default: the library's default)")
    a = ap.parse_args()
    extra = ["--shortlist", str(a.shortlist)] if a.shortlist else []
    work = a.work or tempfile.mkdtemp(prefix="bench_recommend_")
    os.makedirs(work, exist_ok=True)
    seed = a.seed_library
    if not seed:
        seed = os.path.join(work, "seed.h5")
        if not os.path.exists(seed):
            seed_library(a.music, seed)
    rng = np.random.default_rng(0)
    batch = os.path.join(work, "batch.h5")
    with h5py.File(batch, "w") as f:
        f["proba"] = (rng.random((a.requests, len(LABELS))) ** 4).astype(np.float32)
        f["labels"] = np.array(LABELS, dtype=h5py.string_dtype())
    print(f"seed library {seed}; {a.requests} requests of 10 tracks per policy; times from melodic --timing")
    print(f"{'tracks':>9s}  {'file MB':>8s}  {'open ms':>8s}  {'match us/req':>12s}  {'slowest':>8s}  "
          f"{'regulate us/req':>15s}  {'slowest':>8s}  {'inexact':>7s}  {'peak RSS MB':>11s}")
    for n in [int(x) for x in a.sizes.split(",")]:
        lib = os.path.join(work, f"lib_{n}.h5")
        if not os.path.exists(lib):
            subprocess.run([os.path.join(HERE, "make_synthetic_library"), seed, str(n), lib, "--min-dim", "128"],
                           check=True)
        row = [n, os.path.getsize(lib) / 1e6]
        rss = 0
        inexact = 0
        for policy in ("match", "regulate"):
            err, mrss = run([a.bin, "recommend", "--library", lib, "--batch", batch, "-o",
                             os.path.join(work, "out.h5"), "--policy", policy, "--timing"] + extra)
            m1 = re.search(r"opened in ([\d.]+) ms", err)
            m2 = re.search(r"([\d.]+) us per request \(slowest ([\d.]+) us\), (\d+) not", err)
            if not m1 or not m2:
                sys.exit(f"melodic failed on {lib}:\n{err}")
            if policy == "match":
                row.append(float(m1.group(1)))
            row += [float(m2.group(1)), float(m2.group(2))]
            inexact += int(m2.group(3))
            rss = max(rss, mrss)
        print(f"{row[0]:9d}  {row[1]:8.1f}  {row[2]:8.1f}  {row[3]:12.1f}  {row[4]:8.1f}  {row[5]:15.1f}  "
              f"{row[6]:8.1f}  {inexact:7d}  {rss:11.1f}", flush=True)
        extra_line = []
        opens = [row[2]]
        for policy in ("match", "regulate"):
            runs = []
            for _ in range(a.repeat):
                err, _ = run([a.bin, "recommend", "--library", lib, "--batch", batch, "-o",
                              os.path.join(work, "out.h5"), "--policy", policy, "--timing"] + extra)
                pc = percentiles(err)
                if pc:
                    runs.append(pc)
                m1 = re.search(r"opened in ([\d.]+) ms", err)
                if m1:
                    opens.append(float(m1.group(1)))
            if runs:
                med = np.median(np.array(runs), 0)
                extra_line.append(f"{policy} p50 {med[0] / 1e3:.2f} ms, p99 {med[1] / 1e3:.2f} ms "
                                  f"(CPU p50 {med[2] / 1e3:.2f}, p99 {med[3] / 1e3:.2f})")
        line = f"{'':9s}  per request, median of {a.repeat}: " + "; ".join(extra_line) + \
            f"; open median {np.median(opens):.0f} ms"
        if a.cold:
            evict(lib)
            err, _ = run([a.bin, "recommend", "--library", lib, "--batch", batch, "-o",
                          os.path.join(work, "out.h5"), "--timing"] + extra)
            m1 = re.search(r"opened in ([\d.]+) ms", err)
            line += f"; cold open {float(m1.group(1)):.0f} ms" if m1 else "; cold open failed"
        if a.recall:
            sub = os.path.join(work, "batch_recall.h5")
            with h5py.File(batch, "r") as f, h5py.File(sub, "w") as g:
                g["proba"] = f["proba"][:a.recall]
                g["labels"] = f["labels"][:]
            rec = []
            for policy in ("match", "regulate"):
                outs = []
                for mode in (extra, ["--exhaustive"]):
                    o = os.path.join(work, "recall.h5")
                    subprocess.run([a.bin, "recommend", "--library", lib, "--batch", sub, "-o", o, "--policy", policy]
                                   + mode, check=True, stderr=subprocess.DEVNULL)
                    with h5py.File(o, "r") as f:
                        outs.append(f["tracks"][:])
                rec.append(f"{policy} {recall(outs[1], outs[0]):.3f} "
                           f"({int(sum((x == y).all() for x, y in zip(outs[0], outs[1])))}/{a.recall} lists equal)")
            line += f"; recall@10 vs exhaustive over {a.recall} requests: " + ", ".join(rec)
        print(line, flush=True)


if __name__ == "__main__":
    main()
