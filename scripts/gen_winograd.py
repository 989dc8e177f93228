#!/usr/bin/env python3
"""Winograd F(m, r) tables for src/nn/layers.c, exact (fractions).

  python3 scripts/gen_winograd.py           # prints the C tables
  python3 scripts/gen_winograd.py --error   # float32 error of each variant

Toom-Cook on finite points p_0..p_{a-2} plus infinity, a = m + r - 1, in
Lavin & Gray's form y = AT [(G w) * (BT d)]:
  AT[i][x] = p_x^i (the infinity column is 1 in the last row only);
  G[x][j]  = p_x^j / prod_{y != x} (p_x - p_y) (infinity row: 0 .. 0, 1);
  BT[x]    = coefficients, lowest first, of prod_{y != x} (z - p_y) for a
             finite point, of prod_y (z - p_y) for infinity.
Each table is checked exactly on integer data before it is printed. The
8-point set 0, +-1, +-2, +-1/2 gives the tables layers.c had for F(4, 5) and
F(6, 3); F(6, 5) adds +-3/4, the pair with the lowest float32 error among
the dyadic candidates tried with --error (dyadic so AT and BT stay exact in
binary); F(9, 5) adds -3/2, 1/4 and 4 to those ten, the lowest error (about
25x im2col's own, 3.4x F(6, 5)'s) among the triples of +-1/4, +-3/8, +-5/8,
+-7/8, +-5/4, +-3/2, +-7/4, +-5/2, +-3, +-4 (searched with error(), then the
best five compared on 1000 tiles). Standard library only.
"""
import random
import sys
from fractions import Fraction as Fr

P8 = [Fr(0), Fr(1), Fr(-1), Fr(2), Fr(-2), Fr(1, 2), Fr(-1, 2)]
P10 = P8 + [Fr(3, 4), Fr(-3, 4)]
P13 = P10 + [Fr(-3, 2), Fr(1, 4), Fr(4)]


def polymul(p, q):
    out = [Fr(0)] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(q):
            out[i + j] += a * b
    return out


def tables(m, r, pts):
    a = m + r - 1
    assert len(pts) == a - 1
    at = [[p ** i for p in pts] + [Fr(1 if i == m - 1 else 0)] for i in range(m)]
    g = []
    for x, px in enumerate(pts):
        den = Fr(1)
        for y, py in enumerate(pts):
            if y != x:
                den *= px - py
        g.append([px ** j / den for j in range(r)])
    g.append([Fr(0)] * (r - 1) + [Fr(1)])
    bt = []
    for x in range(len(pts)):
        poly = [Fr(1)]
        for y, py in enumerate(pts):
            if y != x:
                poly = polymul(poly, [-py, Fr(1)])
        bt.append(poly + [Fr(0)])
    poly = [Fr(1)]
    for py in pts:
        poly = polymul(poly, [-py, Fr(1)])
    bt.append(poly)
    check(m, r, at, g, bt)
    return at, g, bt


def check(m, r, at, g, bt):
    """y = AT ((G w) * (BT d)) equals the correlation y_i = sum_j d_{i+j} w_j, exactly."""
    a = m + r - 1
    rnd = random.Random(1)
    for _ in range(20):
        d = [Fr(rnd.randint(-9, 9)) for _ in range(a)]
        w = [Fr(rnd.randint(-9, 9)) for _ in range(r)]
        u = [sum(g[x][j] * w[j] for j in range(r)) for x in range(a)]
        v = [sum(bt[x][j] * d[j] for j in range(a)) for x in range(a)]
        y = [sum(at[i][x] * u[x] * v[x] for x in range(a)) for i in range(m)]
        ref = [sum(d[i + j] * w[j] for j in range(r)) for i in range(m)]
        assert y == ref, (m, r)


def c_num(f):
    if f.denominator == 1:
        return str(f.numerator)
    if (f.denominator & (f.denominator - 1)) == 0:   # dyadic: exact as a decimal
        return repr(float(f))
    return "%d.0 / %d" % (f.numerator, f.denominator)


def c_table(name, rows):
    body = ",\n    ".join("{" + ", ".join(c_num(v) for v in row) + "}" for row in rows)
    return "static const double %s[%d][%d] = {\n    %s};" % (name, len(rows), len(rows[0]), body)


def error(m, r, pts, cin=512, tiles=300):
    """RMS error of float32 Winograd relative to float64, and of float32 direct."""
    import numpy as np
    at, g, bt = tables(m, r, pts)
    a = m + r - 1
    f32 = lambda t: np.array([[float(v) for v in row] for row in t], dtype=np.float64)
    rng = np.random.default_rng(1)
    d = rng.standard_normal((tiles, a, cin)).astype(np.float32)
    w = (rng.standard_normal((r, cin)) / np.sqrt(r * cin)).astype(np.float32)
    u = (f32(g) @ w.astype(np.float64)).astype(np.float32)
    v = np.einsum('xj,tjc->txc', f32(bt).astype(np.float32), d)
    y = np.einsum('ix,tx->ti', f32(at).astype(np.float32), np.einsum('txc,xc->tx', v, u))
    ref = np.stack([np.einsum('tjc,jc->t', d[:, i:i + r].astype(np.float64), w.astype(np.float64))
                    for i in range(m)], 1)
    direct = np.stack([np.einsum('tjc,jc->t', d[:, i:i + r], w) for i in range(m)], 1)
    rel = lambda z: float(np.sqrt(np.mean((z.astype(np.float64) - ref) ** 2) / np.mean(ref ** 2)))
    return rel(y), rel(direct)


def main():
    if "--error" in sys.argv:
        for name, m, r, pts in (("F(4,5)", 4, 5, P8), ("F(6,3)", 6, 3, P8), ("F(6,5)", 6, 5, P10),
                                ("F(6,5) +-4", 6, 5, P8 + [Fr(4), Fr(-4)]),
                                ("F(6,5) +-1/4", 6, 5, P8 + [Fr(1, 4), Fr(-1, 4)]),
                                ("F(6,5) +-3/2", 6, 5, P8 + [Fr(3, 2), Fr(-3, 2)]),
                                ("F(9,5)", 9, 5, P13),
                                ("F(9,5) +-3/2 1/4", 9, 5, P10 + [Fr(3, 2), Fr(-3, 2), Fr(1, 4)])):
            e, d = error(m, r, pts)
            print("%-13s float32 rms error %.2e, direct %.2e (%.1fx)" % (name, e, d, e / d))
        return
    at4, g5, bt8 = tables(4, 5, P8)
    at6, g3, bt8b = tables(6, 3, P8)
    assert bt8 == bt8b
    at6_10, g5_10, bt10 = tables(6, 5, P10)
    at9_13, g5_13, bt13 = tables(9, 5, P13)
    print("/* made by scripts/gen_winograd.py */")
    for name, t in (("wino_bt8", bt8), ("wino_at4", at4), ("wino_at6", at6), ("wino_g5", g5), ("wino_g3", g3),
                    ("wino_bt10", bt10), ("wino_at6_10", at6_10), ("wino_g5_10", g5_10),
                    ("wino_bt13", bt13), ("wino_at9_13", at9_13), ("wino_g5_13", g5_13)):
        print(c_table(name, t))


if __name__ == "__main__":
    main()
