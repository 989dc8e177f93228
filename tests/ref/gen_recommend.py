#!/usr/bin/python3
"""gen_recommend.py — reference rankings for tests/test_recommend.c.

An independent numpy re-implementation of the recommender's match and
regulate policies with maximal marginal relevance (Carbonell & Goldstein
1998) and the no-artist-twice-in-a-row rule, as documented in
src/runtime/recommend.h, run on a random library of 60 tracks (4Q labels)
and 5 random listeners over the RAVDESS-7 labels. Points come from
configs/recommend/default.yaml (NRC VAD v1.0, mapped by 2x - 1). Seeds are
drawn until every greedy choice wins by more than 1e-5, so that float32
rounding in C cannot flip an order. Writes tests/fixtures/recommend.h5.
Run from the repository root: /usr/bin/python3 tests/ref/gen_recommend.py
"""
import h5py
import numpy as np
import yaml

f32 = np.float32
cfg = yaml.safe_load(open("configs/recommend/default.yaml"))
SPEECH = ["angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised"]
Q_VA = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]], dtype=f32)


def word(w):
    e = cfg["emotions"][w]
    return np.array([f32(2 * e["valence"] - 1), f32(2 * e["arousal"] - 1)], dtype=f32)


def label_points(labels):
    pts = []
    for l in labels:
        m = cfg.get("merges", {}).get(l)
        if m and not any(w != l and w in labels for w in m):
            pts.append(np.mean(np.array([word(w) for w in m], dtype=np.float64), axis=0).astype(f32))
        else:
            pts.append(word(l))
    return np.array(pts, dtype=f32)


def expected(points, p):
    p = np.maximum(p.astype(np.float64), 0)
    return (p @ points.astype(np.float64) / p.sum()).astype(f32)


def quadrant(v):
    if v[0] >= 0:
        return 1 if v[1] >= 0 else 4
    return 2 if v[1] >= 0 else 3


def dist(a, b):
    d = a.astype(np.float64) - b.astype(np.float64)
    return float(f32(np.sqrt(d @ d)))


def recommend(lib, lpoints, sp, policy, lam, wc, n, target):
    va, conf, quad, emb, inv, artist = lib
    N = len(va)
    L = expected(lpoints, sp)
    mass = np.zeros(5)
    for k in range(len(lpoints)):
        mass[quadrant(lpoints[k])] += float(sp[k])
    lq = int(np.argmax(mass[1:])) + 1            # most speech probability
    if mass[quadrant(L)] == mass[lq]:
        lq = quadrant(L)
    chosen, excluded = [], np.zeros(N, bool)
    max_sim = np.full(N, -1.0)
    prev_td, prev = np.inf, None
    min_gap = np.inf
    for slot in range(min(n, N)):
        way = L
        if policy == 1 and n > 1:
            fr = slot / (min(n, N) - 1)
            way = np.array([f32(L[0] + fr * (float(target[0]) - L[0])),
                            f32(L[1] + fr * (float(target[1]) - L[1]))], dtype=f32)
        cands = []
        want = min(n, N)
        tds = np.array([dist(va[i], target) for i in range(N) if not excluded[i]], dtype=f32)
        for i in range(N):
            if excluded[i]:
                continue
            d = dist(way, va[i])
            if policy == 0:
                rule1 = quad[i] == lq
            else:
                td = dist(va[i], target)
                rule1 = td <= prev_td + 1e-6 and int(np.sum(tds <= f32(td))) - 1 >= want - slot - 1
            ok = not (prev is not None and artist[prev] and artist[i] and artist[prev] == artist[i])
            tier = (0 if rule1 else 1) if ok else (2 if rule1 else 3)
            rel = -d + wc * float(conf[i])
            score = lam * rel - (1 - lam) * max(max_sim[i], 0.0)
            cands.append((tier, -score, i))
        cands.sort()
        best = cands[0]
        same_tier = [c for c in cands if c[0] == best[0]]
        if len(same_tier) > 1:
            min_gap = min(min_gap, same_tier[1][1] - best[1])
        b = best[2]
        chosen.append(b)
        if policy == 1:
            td = dist(va[b], target)
            prev_td = min(prev_td, td)
        excluded[b] = True
        prev = b
        if lam < 1:
            for i in range(N):
                if not excluded[i]:
                    s = float(emb[i].astype(np.float64) @ emb[b].astype(np.float64)) * float(inv[i]) * float(inv[b])
                    max_sim[i] = max(max_sim[i], s)
    return chosen, min_gap


CONFIGS = np.array([[0, 1.0, 0.5], [0, 0.7, 0.5], [0, 0.7, 3.0], [1, 0.7, 0.5], [1, 1.0, 0.0]], dtype=f32)
N_TRACKS, DIM, N_LISTEN, N_REC = 60, 8, 5, 8
target = word(cfg["target"])
lpoints = label_points(SPEECH)
for seed in range(1000):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(4, 0.6), N_TRACKS).astype(f32)
    emb = rng.normal(size=(N_TRACKS, DIM)).astype(f32)
    artists = [f"artist{int(a)}" for a in rng.integers(0, 8, N_TRACKS)]
    sp = rng.dirichlet(np.full(7, 0.5), N_LISTEN).astype(f32)
    va = np.array([expected(Q_VA, p) for p in proba], dtype=f32)
    top = proba.argmax(1)
    conf = proba[np.arange(N_TRACKS), top]
    quad = top + 1
    inv = np.array([f32(1 / np.sqrt(e.astype(np.float64) @ e.astype(np.float64))) for e in emb], dtype=f32)
    lib = (va, conf, quad, emb, inv, artists)
    out = np.zeros((len(CONFIGS), N_LISTEN, N_REC), np.int32)
    gap = np.inf
    for c, (pol, lam, wc) in enumerate(CONFIGS):
        for s in range(N_LISTEN):
            ch, g = recommend(lib, lpoints, sp[s], int(pol), float(lam), float(wc), N_REC, target)
            out[c, s] = ch
            gap = min(gap, g)
    if gap > 1e-5:
        break
print(f"seed {seed}, smallest winning margin {gap:.2e}")
with h5py.File("tests/fixtures/recommend.h5", "w") as f:
    f["library/proba"] = proba
    f["library/embedding"] = emb
    f["library/artist"] = np.array(artists, dtype=h5py.string_dtype())
    f["speech/labels"] = np.array(SPEECH, dtype=h5py.string_dtype())
    f["speech/proba"] = sp
    f["expected/tracks"] = out
    f["expected/params"] = CONFIGS   # policy (0 match, 1 regulate), lambda, w_confidence
