#!/usr/bin/env python3
"""bench_features.py — engine vs numpy for the handcrafted feature sets.

music_paper on the 4Q clips and speech_162 on the RAVDESS clips, at 1 and 2
threads: the C engine (scripts/bench_features.c, linked against
build/libmelodic.a) against the numpy/scipy port of librosa 0.10.2 in
tests/ref/gen_features.py (2 threads = 2 worker processes). Both sides decode
and resample to 22050 Hz first (libsndfile+soxr / torchaudio); the timed part
is feature extraction from decoded audio, decoding is reported apart. The
numpy side is slow, so it runs on a subset (--numpy-clips, default 200); the
engine runs on the same subset (for the ratio) and on all clips. Wall time and
CPU time (all threads / worker processes) are both printed: on a shared
machine the CPU-time ratio is the steadier one.
Also prints the largest difference between the two sides' vectors on the
subset (resamplers differ slightly, so expect small, not zero, differences).
Usage: /usr/bin/python3 scripts/bench_features.py [--numpy-clips N] [--engine-clips N]
"""
import argparse
import glob
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
import gen_features as ref  # noqa: E402

SR = 22050


def build_driver():
    exe = os.path.join(ROOT, "build", "bench_features")
    subprocess.run(["make", "-C", ROOT, "-s", "build/libmelodic.a"], check=True)
    pk = subprocess.run(["pkg-config", "--cflags", "--libs"] +
                          re.search(r"^PKGS := (.*)$", open(os.path.join(ROOT, "Makefile")).read(), re.M).group(1).split(), capture_output=True, text=True,
                        check=True).stdout.split()
    subprocess.run(["gcc", "-O3", "-march=native", "-std=gnu11", "-fopenmp", "-D_GNU_SOURCE",
                    "-I" + os.path.join(ROOT, "src"), os.path.join(ROOT, "scripts", "bench_features.c"),
                    "-o", exe, "-Wl,--whole-archive", os.path.join(ROOT, "build", "libmelodic.a"),
                    "-Wl,--no-whole-archive"] + pk + ["-lm", "-lpthread"], check=True)
    return exe


def run_engine(exe, featset, threads, files, want_audio=False):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as lf:
        lf.write("\n".join(files) + "\n")
    out = tempfile.mktemp(suffix=".f32")
    args = [exe, featset, str(threads), lf.name, out]
    if want_audio:
        args.append(tempfile.mktemp(suffix=".bin"))
    r = subprocess.run(args, capture_output=True, text=True)
    os.unlink(lf.name)
    if r.returncode != 0:
        sys.exit(f"engine failed: {r.stderr.strip()}")
    kv = dict(tok.split("=") for tok in r.stdout.split())
    vec = np.fromfile(out, dtype=np.float32).reshape(len(files), int(kv["dim"]))
    os.unlink(out)
    audio = None
    if want_audio:
        raw = open(args[-1], "rb").read()
        os.unlink(args[-1])
        audio, off = [], 0
        for _ in files:
            n = int(np.frombuffer(raw, dtype=np.int64, count=1, offset=off)[0])
            audio.append(np.frombuffer(raw, dtype=np.float32, count=n, offset=off + 8).copy())
            off += 8 + 4 * n
    return float(kv["decode_s"]), float(kv["features_s"]), vec, audio, float(kv["features_cpu_s"])


def load(path):
    import torch
    import torchaudio
    torch.set_num_threads(1)
    w, fsr = torchaudio.load(path)
    w = w.mean(dim=0, keepdim=True)
    if fsr != SR:
        w = torchaudio.functional.resample(w, fsr, SR)
    return w[0].numpy().astype(np.float32)


def np_features(args):
    featset, y = args
    if featset == "music_paper":
        return ref.music_paper(y, SR)
    return ref.speech_162(y, SR)


def np_features_timed(args):
    t = time.process_time()
    v = np_features(args)
    return v, time.process_time() - t


def run_numpy(featset, threads, files):
    t0 = time.perf_counter()
    with mp.Pool(threads) as pool:
        ys = pool.map(load, files, chunksize=4)
        t1 = time.perf_counter()
        res = pool.map(np_features_timed, [(featset, y) for y in ys], chunksize=4)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, np.stack([v for v, _ in res]), sum(c for _, c in res)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--numpy-clips", type=int, default=200)
    ap.add_argument("--engine-clips", type=int, default=0, help="0 = all")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    data = os.environ.get("MELODIC_DATA", os.path.join(ROOT, "..", "shared", "data"))
    sets = {
        "music_paper": sorted(glob.glob(os.path.join(data, "music-4q", "Q*", "*.mp3"))),
        "speech_162": sorted(glob.glob(os.path.join(data, "ravdess", "Actor_*", "*.flac"))),
    }
    exe = build_driver()
    print(f"{'set':12} {'side':7} {'thr':>3} {'clips':>5} {'decode s':>9} {'features s':>10}"
          f" {'ms/clip':>8} {'cpu ms/clip':>11} {'speed-up (wall, cpu)':>22}")
    for featset, files in sets.items():
        if not files:
            print(f"{featset}: no data under {data}, skipped")
            continue
        rng = np.random.default_rng(0)
        sub = sorted(rng.choice(files, size=min(a.numpy_clips, len(files)), replace=False))
        allf = files if a.engine_clips <= 0 else files[:a.engine_clips]
        for threads in (1, 2):
            nd, nt, nv, nc = run_numpy(featset, threads, sub)
            ed, et, ev, audio, ec = run_engine(exe, featset, threads, sub, want_audio=threads == 1)
            print(f"{featset:12} {'numpy':7} {threads:3d} {len(sub):5d} {nd:9.2f} {nt:10.2f}"
                  f" {1000 * nt / len(sub):8.2f} {1000 * nc / len(sub):11.2f}")
            print(f"{featset:12} {'engine':7} {threads:3d} {len(sub):5d} {ed:9.2f} {et:10.2f}"
                  f" {1000 * et / len(sub):8.2f} {1000 * ec / len(sub):11.2f}"
                  f" {nt / et:9.1f}x {nc / ec:6.1f}x   decode+features (wall) {(nd + nt) / (ed + et):.1f}x")
            if threads == 1:
                # agreement on identical samples (the engine's decoded audio; untimed)
                same = np.stack([np_features((featset, y)) for y in audio])
                d = np.abs(ev - same) / np.maximum(1.0, np.abs(same))
                j = np.unravel_index(np.argmax(d), d.shape)
                print(f"{'':12} same audio: max |engine - numpy| / max(1, |numpy|) = {d.max():.3g}"
                      f" (clip {j[0]}, dim {j[1]}); median {np.median(d):.2g}")
                d = np.abs(ev - nv) / np.maximum(1.0, np.abs(nv))
                print(f"{'':12} own decoders (soxr vs torchaudio resampling): max {d.max():.3g},"
                      f" median {np.median(d):.2g}")
            if len(allf) != len(sub):
                ed, et, _, _, ec = run_engine(exe, featset, threads, allf)
                print(f"{featset:12} {'engine':7} {threads:3d} {len(allf):5d} {ed:9.2f} {et:10.2f}"
                      f" {1000 * et / len(allf):8.2f} {1000 * ec / len(allf):11.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
