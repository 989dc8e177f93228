#!/usr/bin/python3
"""Corruption benchmark side by side (issue 16): the engine's robustness suite
against a scikit-learn pipeline on the same corrupted test clips and folds.

usage: scripts/bench_robust.py RUN_DIR | EXPERIMENT.yaml [--model logreg] [--cache DIR] [-j N]

RUN_DIR is the output folder of a finished `melodic run` of an experiment
with a `robustness:` section (EXPERIMENT.yaml is run first into
/tmp/bench_robust/<name>; its feature tables are cached). Nothing is
re-extracted here: the engine caches every table it used, the clean one, one
per training augmentation and one per corruption of the test clips (rows it
did not corrupt, with `every: K`, hold NaN), each with its cache key in the
`config` attribute. They are found by that key: the experiment's dataset,
features and audio, and the seed the runner derives for each table
(augmentation k of the list, speed first: seed ^ 0xa5a5a5·(k+1); corruption
c: ((robustness.seed or seed mod 1000000007 + 7919) ^ 0x7e57c0d) + 1000003·c).
Folds are results.h5's /protocol/roles.

The reference is StandardScaler + LogisticRegression(lbfgs, multinomial)
with the experiment's C and max_iter, fitted per round twice: on the same
training rows as the engine (clean + augmented copies: a parity check), and
on the clean training rows only (the reference pipeline without the
augmentation suite). Each round's model scores its corrupted test clips;
printed per corruption: accuracy in % (mean over rounds) of the engine (from
results.h5 /robustness) and of both references, and the mean over the suite
(the corruption accuracy). Run with /usr/bin/python3 (h5py, sklearn, yaml).
"""
import argparse
import glob
import os
import subprocess
import sys

import h5py
import numpy as np
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
M64 = (1 << 64) - 1


def s(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def fail(msg):
    print(f"bench_robust: {msg}", file=sys.stderr)
    sys.exit(1)


def run_experiment(exp, j):
    name = yaml.safe_load(open(exp)).get("name", os.path.splitext(os.path.basename(exp))[0])
    out = os.path.join("/tmp/bench_robust", name)
    subprocess.run([os.path.join(ROOT, "build/melodic"), "run", exp, "-o", out, "-j", str(j), "--quiet"],
                   check=True, cwd=ROOT)
    return out


def table_seeds(cfg, corruptions):
    """{seed: what} for every augmentation and corruption table the runner made."""
    seed = int(cfg.get("seed", 0))
    want = {}
    aug = cfg.get("augment") or {}
    k = 0
    for f in aug.get("speed", []) or []:
        want[("speed", float(f))] = f"augment speed {f}"
        k += 1
    for key in aug:
        if key == "speed":
            continue
        want[((seed ^ ((0xa5a5a5 * (k + 1)) & M64)) & M64)] = f"augment {key}"
        k += 1
    rob = cfg.get("robustness") or {}
    base = int(rob.get("seed", seed % 1000000007 + 7919)) ^ 0x7e57c0d
    for c, name in enumerate(corruptions):
        want[(base + 1000003 * c) & M64] = name
    return want


def load_tables(cfg, cache, paths, want):
    """{what: features (n × d, rows in results.h5's order)} for the clean table and every
    table of `want`, found in the cache by key."""
    base = {k: cfg.get(k) for k in ("dataset", "features", "audio")}
    found = {}
    for p in glob.glob(os.path.join(cache, "features-*.h5")):
        with h5py.File(p, "r") as t:
            key = yaml.safe_load(s(t.attrs.get("config", "")) or "{}") or {}
            audio = dict(key.get("audio") or {})
            speed = audio.pop("speed", None)
            if {k: key.get(k) for k in ("dataset", "features")} != {k: base[k] for k in ("dataset", "features")} \
                    or (audio or None) != (base["audio"] or None):
                continue
            tr = key.get("transform")
            if tr is None:
                what = "clean" if speed is None else want.get(("speed", float(speed)))
            else:
                what = want.get(int(tr.get("seed", -1)))
            if what is None:
                continue
            tp = [s(x) for x in t["paths"][:]]
            idx = {q: i for i, q in enumerate(tp)}
            if any(q not in idx for q in paths):
                continue
            found[what] = t["features"][:][[idx[q] for q in paths]]
    missing = [w for w in ["clean"] + list(want.values()) if w not in found]
    if missing:
        fail(f"{cache}: no cached table for {', '.join(missing)} (run the experiment first, with the same cache)")
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="RUN_DIR of a finished melodic run, or EXPERIMENT.yaml to run first")
    ap.add_argument("--model", default="logreg", help="the engine's model to compare (a logreg)")
    ap.add_argument("--cache", help="feature cache folder (default: the experiment's cache:, build/cache)")
    ap.add_argument("-j", type=int, default=2)
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(a.j)
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    run = run_experiment(a.run, a.j) if a.run.endswith(".yaml") else a.run
    res = os.path.join(run, "results.h5")
    if not os.path.exists(res):
        fail(f"{res}: no results.h5 (expected a melodic run folder or an experiment .yaml)")
    with h5py.File(res, "r") as f:
        cfg = yaml.safe_load(s(f["config"][()]))
        if "robustness/corruptions" not in f:
            fail(f"{res}: the experiment has no robustness: section")
        names = [s(x) for x in f["robustness/corruptions"][:]]
        paths = [s(x) for x in f["dataset/paths"][:]]
        y = f["dataset/labels"][:]
        roles = f["protocol/roles"][:].reshape(-1, len(paths))
        if f"models/{a.model}" not in f:
            fail(f"{res}: no model '{a.model}'")
        ours = {c: 100 * float(np.mean(f[f"robustness/{c}/{a.model}/accuracy"][:])) for c in names}
        ours["clean"] = 100 * float(np.mean(f[f"models/{a.model}/metrics/accuracy"][:]))
    spec = next((m for m in cfg["models"] if isinstance(m, dict) and m.get("name", m.get("model")) == a.model), None)
    if not spec or spec.get("model") != "logreg":
        fail(f"model '{a.model}': the reference here is logistic regression; the engine's is {spec and spec.get('model')}")
    prm = spec.get("params") or {}
    C, max_iter = float(prm.get("C", 1.0)), int(prm.get("max_iter", 100))
    cache = a.cache or cfg.get("cache", "build/cache")
    if not os.path.isabs(cache):
        cache = os.path.join(ROOT, cache)
    want = table_seeds(cfg, names)
    T = load_tables(cfg, cache, paths, want)
    aug = [w for w in want.values() if w.startswith("augment ")]
    X = T["clean"]

    theirs = {"same rows": {c: [] for c in ["clean"] + names}, "clean only": {c: [] for c in ["clean"] + names}}
    for r in range(roles.shape[0]):
        tr, te = roles[r] == 1, roles[r] == 3
        for variant, extra in (("same rows", aug), ("clean only", [])):
            Xtr = np.concatenate([X[tr]] + [T[w][tr] for w in extra])
            ytr = np.concatenate([y[tr]] * (1 + len(extra)))
            sc = StandardScaler().fit(Xtr)
            lr = LogisticRegression(C=C, max_iter=max_iter, multi_class="multinomial", solver="lbfgs")
            lr.fit(sc.transform(Xtr), ytr)
            theirs[variant]["clean"].append(np.mean(lr.predict(sc.transform(X[te])) == y[te]))
            for c in names:
                Xc = T[c]
                rows = te & ~np.isnan(Xc[:, 0])   # the clips this corruption covered
                theirs[variant][c].append(np.mean(lr.predict(sc.transform(Xc[rows])) == y[rows]))
            print(f"  round {r + 1}/{roles.shape[0]} {variant}: {len(ytr)} training rows", file=sys.stderr)

    cols = ["engine", "sklearn, same rows", "sklearn, clean only"]
    get = [lambda c: ours[c], lambda c: 100 * np.mean(theirs["same rows"][c]),
           lambda c: 100 * np.mean(theirs["clean only"][c])]
    print(f"{cfg.get('name')}: model {a.model} (C {C:g}), {len(paths)} clips, {roles.shape[0]} rounds, "
          f"{len(aug)} augmented copies of the training rows; accuracy in %")
    print("| corruption | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for c in ["clean"] + names:
        print(f"| {c} | " + " | ".join(f"{g(c):.1f}" for g in get) + " |")
    print("| **corruption accuracy** | " + " | ".join(f"**{np.mean([g(c) for c in names]):.1f}**" for g in get) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
