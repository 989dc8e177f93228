#!/usr/bin/env python3
"""Seconds per training epoch: our engine vs PyTorch 1.13, same shapes, one run.

  /usr/bin/python3 scripts/bench_nn.py [--n 1440] [--cnn-epochs 1] [--cnn-batch 64] [--mlp-epochs 5]
                                      [--threads 1,2] [--build build] [--models cnn1d,mlp] [--repeat 3]

Models: the paper's Table I CNN (cnn1d learner; 1,440 x 162 inputs, batch 64
as configs/models/speech_cnn.yaml, Adam, dropout 0.2, batch norm) and the MLP (hidden 256; 1,440 x 2,048 inputs,
batch 200, Adam). Random data, 7 classes, no validation. Ours runs through
scripts/bench_nn_driver.c (built here against build/libmelodic.a: run `make`
first, or pass --build DIR); PyTorch runs in this process with torch.set_num_threads(t). PyTorch's
model uses channels-first Conv1d(padding='same') and MaxPool1d(k, 2, k//2),
the same work up to one pooled position per block. Prints times and the
ratio torch / ours (> 1: ours is faster), for wall time and for CPU time.
Each engine runs --repeat times, the two alternating (ours, torch, ours,
...), and each column is the median of its runs: a shared VM's speed drifts
by 5-15 % from minute to minute, which a single pair of runs turns into the
ratio; alternating puts both engines in the same minutes.
"""
import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time

# The project's environment pins OpenBLAS to its Haswell (AVX2) kernels; keep
# that for both engines (PyTorch's Linear uses the same OpenBLAS). Must be set
# before torch loads OpenBLAS.
os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_driver(build):
    bdir = os.path.join(ROOT, build)
    exe = os.path.join(bdir, "bench_nn_driver")
    src = os.path.join(ROOT, "scripts", "bench_nn_driver.c")
    lib = os.path.join(bdir, "libmelodic.a")
    if not os.path.exists(lib):
        sys.exit("bench_nn: %s missing; run make first" % lib)
    pkgs = re.search(r'^PKGS := (.*)$', open(os.path.join(ROOT, 'Makefile')).read(), re.M).group(1)
    cflags = subprocess.check_output("pkg-config --cflags " + pkgs, shell=True, text=True).split()
    libs = subprocess.check_output("pkg-config --libs " + pkgs, shell=True, text=True).split()
    cmd = (["gcc", "-O2", "-std=gnu11", "-fopenmp", "-I" + os.path.join(ROOT, "src")] + cflags +
           ["-o", exe, src, "-Wl,--whole-archive", lib, "-Wl,--no-whole-archive"] + libs + ["-lm", "-lpthread"])
    subprocess.check_call(cmd)
    return exe


def ours(exe, model, n, d, threads, epochs, bs):
    """(wall, cpu) seconds per epoch of the driver."""
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.check_output([exe, model, str(n), str(d), str(threads), str(epochs), str(bs)], text=True)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime) / epochs
    return float(out.strip().split("seconds_per_epoch=")[1]), cpu


def table1(n_classes, L):
    layers, c_in = [], 1
    blocks = [(512, 5, 5, False), (512, 5, 5, True), (256, 5, 5, False), (256, 3, 5, True), (128, 3, 3, True)]
    for f, k, p, drop in blocks:
        layers += [torch.nn.Conv1d(c_in, f, k, padding="same"), torch.nn.ReLU(), torch.nn.BatchNorm1d(f),
                   torch.nn.MaxPool1d(p, 2, p // 2)]
        if drop:
            layers.append(torch.nn.Dropout(0.2))
        c_in = f
        L = (L + 2 * (p // 2) - p) // 2 + 1
    layers += [torch.nn.Flatten(), torch.nn.Linear(c_in * L, 512), torch.nn.ReLU(), torch.nn.BatchNorm1d(512),
               torch.nn.Linear(512, n_classes)]
    return torch.nn.Sequential(*layers)


def torch_epoch(model, n, d, threads, epochs, bs):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    X = torch.randn(n, d)
    y = torch.arange(n) % 7
    if model == "cnn1d":
        net = table1(7, d)
        X = X.reshape(n, 1, d)
    else:
        net = torch.nn.Sequential(torch.nn.Linear(d, 256), torch.nn.ReLU(), torch.nn.Linear(256, 7))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    lossf = torch.nn.CrossEntropyLoss()
    net.train()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            opt.zero_grad()
            lossf(net(X[idx]), y[idx]).backward()
            opt.step()
    return (time.perf_counter() - t0) / epochs, (time.process_time() - c0) / epochs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1440)
    ap.add_argument("--cnn-epochs", type=int, default=1)
    ap.add_argument("--cnn-batch", type=int, default=64)
    ap.add_argument("--mlp-epochs", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--build", default="build", help="build directory holding libmelodic.a")
    ap.add_argument("--models", default="cnn1d,mlp")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each engine, alternating; medians reported")
    a = ap.parse_args()
    if a.repeat < 1:
        sys.exit("bench_nn: --repeat must be at least 1, got %d" % a.repeat)
    exe = build_driver(a.build)
    print("OPENBLAS_CORETYPE=%s; wall and CPU seconds per epoch, each the median of %d runs alternating"
          " ours / torch (CPU time is the steadier figure on a shared machine)"
          % (os.environ["OPENBLAS_CORETYPE"], a.repeat))
    print("%-30s %3s %10s %10s %6s %10s %10s %6s" % ("model", "thr", "ours wall", "torch wall", "ratio",
                                                     "ours cpu", "torch cpu", "ratio"))
    for model, d, ep, bs in (("cnn1d", 162, a.cnn_epochs, a.cnn_batch), ("mlp", 2048, a.mlp_epochs, 200)):
        if model not in a.models.split(","):
            continue
        for t in (int(x) for x in a.threads.split(",")):
            runs = []
            for _ in range(a.repeat):
                runs.append(ours(exe, model, a.n, d, t, ep, bs) + torch_epoch(model, a.n, d, t, ep, bs))
            ow, oc, pw, pc = (statistics.median(r[k] for r in runs) for k in range(4))
            name = "%s %d x %d b%d" % ("Table I CNN" if model == "cnn1d" else "MLP hidden 256", a.n, d, bs)
            print("%-30s %3d %10.3f %10.3f %6.2f %10.3f %10.3f %6.2f" % (name, t, ow, pw, pw / ow, oc, pc, pc / oc),
                  flush=True)


if __name__ == "__main__":
    main()
