#!/usr/bin/python3
"""bench_frontend_ref.py — reference side of scripts/bench_frontend: torchaudio.load +
torchaudio.functional.resample + MelSpectrogram (Cnn14_16k settings, slaney) + dB, per file.
usage: bench_frontend_ref.py LIST THREADS"""
import sys
import time

import torch
import torchaudio

files = [l.strip() for l in open(sys.argv[1]) if l.strip()]
torch.set_num_threads(int(sys.argv[2]))
mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=512, hop_length=160, f_min=50.0,
                                           f_max=8000.0, n_mels=64, power=2.0, center=True,
                                           pad_mode="reflect", norm="slaney", mel_scale="slaney")
means = []
stage = [0.0, 0.0, 0.0]
t0 = time.perf_counter()
c0 = time.process_time()
with torch.inference_mode():
    for f in files:
        a = time.process_time()
        w, sr = torchaudio.load(f)
        w = w.mean(dim=0)
        b = time.process_time()
        if sr != 16000:
            w = torchaudio.functional.resample(w, sr, 16000)
        c = time.process_time()
        lm = 10.0 * torch.log10(torch.clamp(mel(w), min=1e-10))
        means.append(float(lm.mean()))
        d = time.process_time()
        stage[0] += b - a
        stage[1] += c - b
        stage[2] += d - c
dt = time.perf_counter() - t0
cpu = time.process_time() - c0
print(f"torchaudio cpu ms per clip: load+downmix {1e3 * stage[0] / len(files):.2f}, resample "
      f"{1e3 * stage[1] / len(files):.2f}, mel+dB {1e3 * stage[2] / len(files):.2f}", file=sys.stderr)
print(f"clips {len(files)} seconds {dt:.3f} clips_per_s {len(files) / dt:.1f} "
      f"cpu_ms_per_clip {1e3 * cpu / len(files):.2f} mean_logmel_db {sum(means) / len(means):.4f}")
