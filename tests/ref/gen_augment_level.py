#!/usr/bin/python3
"""gen_augment_level.py — reference loudness values for tests/test_level.c.

Run from the repository root with Debian's python: /usr/bin/python3 tests/ref/gen_augment_level.py
Writes tests/fixtures/augment/level.h5.

Reference: an independent numpy/scipy implementation of ITU-R BS.1770-4 integrated loudness.
At 48 kHz the K-weighting filters are the standard's own coefficients (Tables 1 and 2, typed
in here, applied with scipy.signal.lfilter in float64); at other rates the shelf and high-pass
are derived by the bilinear transform from their analog parameters (the same derivation as
libebur128). Blocks 400 ms every 100 ms, absolute gate -70 LUFS, relative gate -10 LU.

The signals are mono versions of EBU Tech 3341 test cases 1-5 (1 kHz sine, one continuous
phase, each segment's stereo level raised by 10*log10(2) dB since the stereo cases put the
sine on both channels), a 0 dBFS sine at several rates, and speech-like noise bursts; the C
test rebuilds each signal from the same formula (documented per case) and compares its result
with the value stored here.
"""
import h5py
import numpy as np
import scipy.signal

OUT = "tests/fixtures/augment/level.h5"

B1_48 = [1.53512485958697, -2.69169618940638, 1.19839281085285]
A1_48 = [1.0, -1.69065929318241, 0.73248077421585]
B2_48 = [1.0, -2.0, 1.0]
A2_48 = [1.0, -1.99004745483398, 0.99007225036621]


def kfilters(sr):
    if sr == 48000:
        return (B1_48, A1_48), (B2_48, A2_48)
    f0, G, Q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    K = np.tan(np.pi * f0 / sr)
    Vh = 10 ** (G / 20)
    Vb = Vh ** 0.4996667741545416
    a0 = 1 + K / Q + K * K
    b1 = [(Vh + Vb * K / Q + K * K) / a0, 2 * (K * K - Vh) / a0, (Vh - Vb * K / Q + K * K) / a0]
    a1 = [1, 2 * (K * K - 1) / a0, (1 - K / Q + K * K) / a0]
    f0, Q = 38.13547087602444, 0.5003270373238773
    K = np.tan(np.pi * f0 / sr)
    a0 = 1 + K / Q + K * K
    a2 = [1, 2 * (K * K - 1) / a0, (1 - K / Q + K * K) / a0]
    return (b1, a1), ([1, -2, 1], a2)


def loudness(x, sr):
    (b1, a1), (b2, a2) = kfilters(sr)
    y = scipy.signal.lfilter(b2, a2, scipy.signal.lfilter(b1, a1, x.astype(np.float64)))
    step = int(round(sr / 10))
    blk = 4 * step
    nb = (len(y) - blk) // step + 1
    z = np.array([np.mean(y[j * step:j * step + blk] ** 2) for j in range(nb)])
    with np.errstate(divide="ignore"):
        l = -0.691 + 10 * np.log10(z)
    g = l > -70
    if not g.any():
        return -np.inf
    rel = -0.691 + 10 * np.log10(z[g].mean()) - 10
    g2 = g & (l > rel)
    return -0.691 + 10 * np.log10(z[g2].mean())


def sine_segments(sr, segs):
    """segs: list of (seconds, dBFS peak); one continuous 1 kHz phase; float32."""
    n = [int(round(s * sr)) for s, _ in segs]
    amp = np.concatenate([np.full(k, 10 ** (db / 20)) for k, (_, db) in zip(n, segs)])
    i = np.arange(sum(n))
    return (amp * np.sin(2 * np.pi * 1000 * i / sr)).astype(np.float32)


M = 10 * np.log10(2)   # stereo level per channel -> mono level giving the same loudness
CASES = [
    # name, sr, segments (seconds, dBFS), EBU Tech 3341 expected (or the standard's -3.01)
    ("sine_0dbfs_48k", 48000, [(20, 0.0)], -3.01),
    ("sine_0dbfs_44k", 44100, [(20, 0.0)], -3.01),
    ("sine_0dbfs_16k", 16000, [(20, 0.0)], -3.01),
    ("tech3341_case1", 48000, [(20, -23 + M)], -23.0),
    ("tech3341_case2", 48000, [(20, -33 + M)], -33.0),
    ("tech3341_case3", 48000, [(10, -36 + M), (60, -23 + M), (10, -36 + M)], -23.0),
    ("tech3341_case4", 48000, [(10, -72 + M), (10, -36 + M), (60, -23 + M), (10, -36 + M),
                               (10, -72 + M)], -23.0),
    ("tech3341_case5", 48000, [(20, -26 + M), (20.1, -20 + M), (20, -26 + M)], -23.0),
]

with h5py.File(OUT, "w") as f:
    for name, sr, segs, nominal in CASES:
        x = sine_segments(sr, segs)
        v = loudness(x, sr)
        g = f.create_group(name)
        g.attrs["sr"] = sr
        g.create_dataset("seconds", data=np.array([s for s, _ in segs], np.float64))
        g.create_dataset("dbfs", data=np.array([d for _, d in segs], np.float64))
        g.attrs["lufs"] = v
        g.attrs["nominal"] = nominal
        print(f"{name}: {v:.4f} LUFS (nominal {nominal})")
