#!/usr/bin/python3
"""gen_augment.py — reference outputs for tests/test_augment.c.

Run from the repository root with Debian's python (scipy 1.10, torch 1.13, torchaudio 0.13):
    /usr/bin/python3 tests/ref/gen_augment.py
Writes tests/fixtures/augment/augment.h5:
  /telephone/{x16, y16, x8, y8}: the band-pass alone (the C function with resample = 0) as
      scipy.signal.sosfilt of butter(4, 300, 'high') followed by butter(4, 3400, 'low'), both
      as second-order sections at the signal's rate (16 and 8 kHz), on 0.25 s of white noise;
  /pitch/x (0.5 s at 16 kHz: a 220 Hz harmonic tone with vibrato plus a quiet chirp) and
      /pitch/y_<s> = torchaudio.functional.pitch_shift(x, 16000, s, n_fft=512) for s = 3, -4, 12;
  /specmask/m (40 frames x 32 bins) and /specmask/y_<seed>_<fill>: torchaudio.functional.
      mask_along_axis applied 2 times along time (mask_param 10) then 2 times along frequency
      (mask_param 8), with torch.rand replaced by the engine's generator (xoshiro256** seeded
      by splitmix64, src/core/rng.c, ported below) so both draw the same uniforms; fill = the
      matrix mean (1) or 0 (0).
"""
import math

import h5py
import numpy as np
import scipy.signal
import torch
import torchaudio.functional as AF

OUT = "tests/fixtures/augment/augment.h5"
GZ = dict(compression="gzip", compression_opts=9, shuffle=True)
M64 = (1 << 64) - 1


class Rng:
    """src/core/rng.c: mm_rng_seed and mm_rng_uniform."""

    @staticmethod
    def _sm(x):
        x = (x + 0x9E3779B97F4A7C15) & M64
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return x, z ^ (z >> 31)

    def __init__(self, seed, a, b):
        x, h = self._sm(seed & M64)
        x = h ^ ((a * 0xD1342543DE82EF95 + 0x632BE59BD9B4E019) & M64)
        x, h = self._sm(x)
        x = h ^ ((b * 0xA0761D6478BD642F + 0xE7037ED1A0B428DB) & M64)
        self.s = []
        for _ in range(4):
            x, z = self._sm(x)
            self.s.append(z)

    def u64(self):
        s = self.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M64
        res = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return res

    def uniform(self):
        return (self.u64() >> 11) * 2.0 ** -53


ST_MASK = 0x6D61736B   # augment.c's stream id for masks

with h5py.File(OUT, "w") as f:
    rs = np.random.RandomState(16)
    g = f.create_group("telephone")
    for sr in (16000, 8000):
        x = (0.3 * rs.randn(sr // 4)).astype(np.float32)
        sos = np.vstack([scipy.signal.butter(4, 300, "high", fs=sr, output="sos"),
                         scipy.signal.butter(4, 3400, "low", fs=sr, output="sos")])
        y = scipy.signal.sosfilt(sos, x.astype(np.float64)).astype(np.float32)
        g.create_dataset(f"x{sr // 1000}", data=x, **GZ)
        g.create_dataset(f"y{sr // 1000}", data=y, **GZ)

    g = f.create_group("pitch")
    sr = 16000
    t = np.arange(sr // 2) / sr
    f0 = 220 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    ph = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(0.3 / k * np.sin(k * ph) for k in range(1, 6))
    x = x + 0.05 * scipy.signal.chirp(t, 100, 0.5, 4000)
    x = x.astype(np.float32)
    g.create_dataset("x", data=x, **GZ)
    for s in (3, -4, 12):
        y = AF.pitch_shift(torch.from_numpy(x)[None], sr, s, n_fft=512)[0].numpy()
        g.create_dataset(f"y_{s}", data=y.astype(np.float32), **GZ)

    g = f.create_group("specmask")
    m = rs.randn(40, 32).astype(np.float32)
    g.create_dataset("m", data=m, **GZ)
    real_rand = torch.rand
    for seed in (1, 2, 3):
        for fill in (1, 0):
            rng = Rng(seed, ST_MASK, 0)
            torch.rand = lambda *a, **k: torch.tensor([rng.uniform()], dtype=torch.float64)
            spec = torch.from_numpy(m.T.copy())[None]   # (channel, freq, time)
            val = float(spec.double().mean()) if fill else 0.0
            val = float(np.float32(val))
            for _ in range(2):
                spec = AF.mask_along_axis(spec, 10, val, 2)
            for _ in range(2):
                spec = AF.mask_along_axis(spec, 8, val, 1)
            torch.rand = real_rand
            g.create_dataset(f"y_{seed}_{fill}", data=spec[0].numpy().T.copy(), **GZ)
print("wrote", OUT)
