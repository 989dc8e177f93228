#!/usr/bin/python3
"""bench_mn04.py — EfficientAT mn04: our engine (build/melodic embed) vs the PyTorch reference.

Run from the repository root with /usr/bin/python3 after `make`. Both sides do the
same work per file: decode, average to mono, resample to 32 kHz, EfficientAT log-mel,
network, embedding + 527 sigmoid scores. The PyTorch side is tests/ref/gen_mn04.py's
architecture with the same checkpoint (torchaudio sox_io decode, sinc resampler).
  1. latency: one 10 s 4Q clip processed --reps times in-process (engine: this
     script's helper, single-threaded per file as `melodic embed`; torch:
     set_num_threads N, intra-op) → ms per 10 s clip and real-time factor
  2. throughput: all RAVDESS clips (--limit N for fewer), engine with -j 1 / -j 2
     (files in parallel), torch with 1 / 2 intra-op threads → clips/s and the ratio
  3. peak memory (max RSS) of each run, from /usr/bin/time -v
  0. network alone: 1000 random log-mel frames (10 s) through the network, engine
     (scripts/bench_mn04_net.c, compiled here against build/libmelodic.a; with N
     threads: OpenMP over depthwise channels, OpenBLAS N threads) vs torch
OPENBLAS_CORETYPE is set to Haswell when unset (as in the project environment;
without it OpenBLAS falls back to its Prescott kernels on this virtual CPU).
Usage: /usr/bin/python3 scripts/bench_mn04.py [--limit N] [--reps R] [--threads 1,2]
       [--skip-latency]
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.environ.get("MELODIC_DATA", os.path.join(ROOT, "..", "shared", "data"))
MODELS = os.environ.get("MELODIC_MODELS", os.path.join(ROOT, "..", "shared", "models"))
BIN = os.path.join(ROOT, "build", "melodic")
CLIP10 = os.path.join(DATA, "music-4q", "Q1", "MT0000040632.mp3")


def timed(cmd, env=None):
    """Run cmd under /usr/bin/time -v; return (seconds, max RSS MiB, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if p.returncode:
        sys.exit(f"failed: {' '.join(cmd[:4])}...: {p.stderr[-500:]}")
    rss = 0
    for line in p.stderr.splitlines():
        if "Maximum resident set size" in line:
            rss = int(line.split(":")[1]) / 1024
    return dt, rss, p.stdout


def engine(files, threads, jobs, out):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    dt, rss, _ = timed([BIN, "embed", "--model", "mn04", "-j", str(jobs), "-o", out] + files, env)
    return dt, rss


TORCH_CODE = r"""
import sys, time, torch, torchaudio
sys.path.insert(0, {ref!r})
import gen_mn04 as g
torch.set_num_threads({threads})
net = g.MN04().eval()
net.load_state_dict(torch.load({weights!r}, map_location="cpu"), strict=True)
files = open({lst!r}).read().split("\n")
def run(fs):
    for f in fs:
        w = g.load_clip(f)
        logits, emb = net(g.logmel(w)[None, None])
        torch.sigmoid(logits)
with torch.no_grad():
    run(files[:1])                      # warm-up
    ts = []
    for _ in range({reps}):
        t = time.perf_counter()
        run(files)
        ts.append((time.perf_counter() - t) / len(files) * 1000)
print("ms_per_clip %.3f min %.3f" % (sum(ts) / len(ts), min(ts)))
"""


def torch_run(files, threads, reps=1):
    """Returns (wall seconds incl. start-up, in-process ms per clip, max RSS MiB)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as lst:
        lst.write("\n".join(files))
    code = TORCH_CODE.format(ref=os.path.join(ROOT, "tests", "ref"), threads=threads,
                             weights=os.path.join(MODELS, "efficientat", "mn04_as_mAP_432.pt"),
                             lst=lst.name, reps=reps)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    dt, rss, out = timed(["/usr/bin/python3", "-c", code], env)
    os.unlink(lst.name)
    v = out.split()
    return dt, (float(v[1]), float(v[3])), rss


NET_TORCH = r"""
import sys, time, torch
sys.path.insert(0, {ref!r})
import gen_mn04 as g
torch.set_num_threads({threads})
net = g.MN04().eval()
net.load_state_dict(torch.load({weights!r}, map_location="cpu"), strict=True)
x = torch.rand(1, 1, 128, 1000) * 2 - 1
with torch.no_grad():
    net(x)
    ts = []
    for _ in range({reps}):
        t = time.perf_counter()
        torch.sigmoid(net(x)[0])
        ts.append((time.perf_counter() - t) * 1000)
print("ms_per_clip %.3f min %.3f" % (sum(ts) / len(ts), min(ts)))
"""


def build_helper():
    exe = os.path.join(tempfile.gettempdir(), f"bench_mn04_net_{os.getpid()}")
    libs = subprocess.run(["pkg-config", "--cflags", "--libs"] +
                          re.search(r"^PKGS := (.*)$", open(os.path.join(ROOT, "Makefile")).read(), re.M).group(1).split(), capture_output=True, text=True).stdout.split()
    subprocess.run(["gcc", "-O2", "-fopenmp", "-I" + os.path.join(ROOT, "src"),
                    os.path.join(HERE, "bench_mn04_net.c"), "-o", exe, "-Wl,--whole-archive",
                    os.path.join(ROOT, "build", "libmelodic.a"), "-Wl,--no-whole-archive"] +
                   libs + ["-lm"], check=True)
    return exe


def engine_inproc(exe, reps, threads, parallel, files=()):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    weights = os.path.join(MODELS, "efficientat", "mn04_as_mAP_432.pt")
    dt, rss, out = timed([exe, weights, str(reps), str(parallel)] + list(files), env)
    v = out.split()
    return (float(v[1]), float(v[3])), rss


def network_alone(exe, reps, threads):
    weights = os.path.join(MODELS, "efficientat", "mn04_as_mAP_432.pt")
    print(f"# network alone: 1000 frames (10 s), {reps} passes, in-process timing")
    print(f"{'side':8s} {'threads':>7s} {'mean ms':>9s} {'min ms':>9s}")
    for th in threads:
        e, _ = engine_inproc(exe, reps, th, 1)
        env = dict(os.environ, OMP_NUM_THREADS=str(th))
        code = NET_TORCH.format(ref=os.path.join(ROOT, "tests", "ref"), threads=th,
                                weights=weights, reps=reps)
        v = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True,
                           env=env, check=True).stdout.split()
        t = (float(v[1]), float(v[3]))
        print(f"{'engine':8s} {th:7d} {e[0]:9.1f} {e[1]:9.1f}")
        print(f"{'pytorch':8s} {th:7d} {t[0]:9.1f} {t[1]:9.1f}")
        print(f"{'ratio':8s} {th:7d} {t[0] / e[0]:8.2f}x {t[1] / e[1]:8.2f}x")


def main():
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0, help="RAVDESS clips (0 = all 1440)")
    ap.add_argument("--reps", type=int, default=20, help="repetitions of the 10 s clip")
    ap.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    ap.add_argument("--skip-latency", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build/melodic missing: run make first")
    out = tempfile.mktemp(suffix=".h5")
    threads = [int(t) for t in a.threads.split(",")]
    exe = build_helper()
    network_alone(exe, a.reps, threads)
    if not a.skip_latency:
        print(f"# latency: {os.path.basename(CLIP10)} (10 s) x {a.reps}, decode + resample + "
              "front end + network, in-process timing")
        print(f"{'side':8s} {'threads':>7s} {'mean ms':>9s} {'min ms':>9s} {'RTF(min)':>9s} "
              f"{'maxRSS MiB':>10s}")
    for th in ([] if a.skip_latency else threads):
        ms, rss = engine_inproc(exe, a.reps, th, 0, [CLIP10])
        _, tms, trss = torch_run([CLIP10], th, a.reps)
        print(f"{'engine':8s} {th:7d} {ms[0]:9.1f} {ms[1]:9.1f} {ms[1] / 10000:9.4f} {rss:10.0f}")
        print(f"{'pytorch':8s} {th:7d} {tms[0]:9.1f} {tms[1]:9.1f} {tms[1] / 10000:9.4f} "
              f"{trss:10.0f}")
        print(f"{'ratio':8s} {th:7d} {tms[0] / ms[0]:8.2f}x {tms[1] / ms[1]:8.2f}x")
    os.unlink(exe)
    files = sorted(glob.glob(os.path.join(DATA, "ravdess", "Actor_*", "*.flac")))
    if a.limit:
        files = files[:a.limit]
    print(f"# throughput: {len(files)} RAVDESS clips (decode + resample + front end + network)")
    print("engine: melodic embed -j N, wall time incl. start-up; pytorch: wall time incl.")
    print("start-up, and in brackets its in-process loop alone (imports, model load excluded)")
    print(f"{'side':8s} {'threads':>7s} {'seconds':>8s} {'clips/s':>8s} {'maxRSS MiB':>10s}")
    for th in threads:
        e, rss = engine(files, th, th, out)
        t, tms, trss = torch_run(files, th)
        tl = tms[0] * len(files) / 1000
        print(f"{'engine':8s} {th:7d} {e:8.1f} {len(files) / e:8.1f} {rss:10.0f}")
        print(f"{'pytorch':8s} {th:7d} {t:8.1f} {len(files) / t:8.1f} {trss:10.0f}   "
              f"[loop {tl:.1f} s, {len(files) / tl:.1f} clips/s]")
        print(f"{'ratio':8s} {th:7d} {t / e:8.2f}x   [vs loop alone {tl / e:.2f}x]")
    if os.path.exists(out):
        os.unlink(out)


if __name__ == "__main__":
    main()
