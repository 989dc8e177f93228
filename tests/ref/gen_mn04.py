#!/usr/bin/python3
"""gen_mn04.py — PyTorch reference for the EfficientAT mn04_as network (tests/test_mn04.c).

Written from reading fschmid56/EfficientAT (models/mn/model.py, block_types.py,
utils.py, models/preprocess.py); no code copied. The architecture is rebuilt
here, the checkpoint is loaded with strict key matching, and for three real
clips (RAVDESS mono, RAVDESS stereo Actor_01/03-01-02-01-01-02-01, one 4Q MP3),
decoded with torchaudio (sox_io), averaged to mono, resampled to 32 kHz with
torchaudio's sinc resampler and cropped to a few seconds, the script writes
  tests/fixtures/mn04_ref.h5:
    /clipK/mel     (T, 128) float32  log-mel, frame-major (network input, transposed)
    /clipK/embedding (384)  float32  mean over freq and time of features.16's output
    /clipK/scores  (527)    float32  sigmoid of classifier logits
    /clipK/logits  (527)    float32
    /clipK/layers  (1760)   float32  features.2..16: per layer [time means (C), time stds (C)]
                                     of each channel's frequency mean (std with n - 1)
    attrs: path (relative to the data root), start, length (samples at 32 kHz)
It asserts that the RAVDESS clips are tagged Speech (index 0) top-1.
Usage: /usr/bin/python3 tests/ref/gen_mn04.py [data_root] [model_root]
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "mn04_ref.h5")

# MobileNetV3-Large bottlenecks: (in, kernel, expanded, out, se, activation, stride)
BASE = [
    (16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2),
    (24, 3, 72, 24, False, "RE", 1), (24, 5, 72, 40, True, "RE", 2),
    (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1),
    (160, 5, 960, 160, True, "HS", 1),
]


def divisible8(v, d=8):
    """Round to the nearest multiple of d, at least d, never more than 10% down."""
    r = max(d, int(v + d / 2) // d * d)
    return r + d if r < 0.9 * v else r


def conv_bn(cin, cout, k, stride=1, groups=1, act=None):
    mods = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=0.001)]
    if act is not None:
        mods.append(act())
    return nn.Sequential(*mods)


class ChannelSE(nn.Module):
    """Squeeze over (freq, time), two linears with ReLU, sigmoid gate per channel."""

    def __init__(self, c, r=4):
        super().__init__()
        s = divisible8(c // r)
        self.fc1 = nn.Linear(c, s)
        self.fc2 = nn.Linear(s, c)

    def forward(self, x):
        g = x.mean(dim=(2, 3))
        g = torch.sigmoid(self.fc2(F.relu(self.fc1(g))))
        return x * g[:, :, None, None]


class ConcurrentSE(nn.Module):
    """EfficientAT's 'se_dims=c, se_agg=max': one channel SE, max over a stack of one."""

    def __init__(self, c):
        super().__init__()
        self.conc_se_layers = nn.ModuleList([ChannelSE(c)])

    def forward(self, x):
        return torch.stack([m(x) for m in self.conc_se_layers], 0).max(0)[0]


class Bneck(nn.Module):
    def __init__(self, cin, k, exp, cout, se, act, stride):
        super().__init__()
        a = nn.Hardswish if act == "HS" else nn.ReLU
        mods = []
        if exp != cin:
            mods.append(conv_bn(cin, exp, 1, act=a))
        mods.append(conv_bn(exp, exp, k, stride, groups=exp, act=a))
        if se:
            mods.append(ConcurrentSE(exp))
        mods.append(conv_bn(exp, cout, 1))
        self.block = nn.Sequential(*mods)
        self.res = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return y + x if self.res else y


class MN04(nn.Module):
    def __init__(self, width=0.4, n_classes=527):
        super().__init__()
        cfg = [(divisible8(i * width), k, divisible8(e * width), divisible8(o * width), se, a, s)
               for (i, k, e, o, se, a, s) in BASE]
        layers = [conv_bn(1, cfg[0][0], 3, 2, act=nn.Hardswish)]
        layers += [Bneck(*c) for c in cfg]
        last_in = cfg[-1][3]
        layers.append(conv_bn(last_in, 6 * last_in, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        hidden = divisible8(1280 * width)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                                        nn.Linear(6 * last_in, hidden), nn.Hardswish(),
                                        nn.Dropout(0.2), nn.Linear(hidden, n_classes))
        self.cfg = cfg

    def forward(self, x):
        stats = []   # features.2 .. features.16: time mean and std of the frequency mean
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i >= 2:
                f = x.mean(dim=2)[0]                  # (C, T)
                stats += [f.mean(dim=1), f.std(dim=1)]
        emb = x.mean(dim=(2, 3))
        logits = self.classifier(x)
        self.layer_stats = torch.cat(stats)
        return logits, emb


def logmel(wave32k):
    """EfficientAT AugmentMelSTFT in eval mode; wave (n,) float32 → (128, T)."""
    x = torch.as_tensor(wave32k, dtype=torch.float32)[None, None]
    x = F.conv1d(x, torch.tensor([[[-0.97, 1.0]]])).squeeze(1)
    win = torch.hann_window(800, periodic=False)
    spec = torch.stft(x, 1024, hop_length=320, win_length=800, window=win, center=True,
                      normalized=False, return_complex=True)
    power = spec.real ** 2 + spec.imag ** 2
    # Kaldi banks (fmin 0, fmax 15000, VTLN off), one zero column for the Nyquist bin
    ta, _ = torchaudio.compliance.kaldi.get_mel_banks(128, 1024, 32000.0, 0.0, 15000.0,
                                                      100.0, -500.0, 1.0)
    banks = F.pad(ta, (0, 1))
    mel = torch.matmul(banks, power)
    mel = (mel + 1e-5).log()
    return ((mel + 4.5) / 5.0)[0]


def load_clip(path):
    wav, sr = torchaudio.load(path)
    wav = wav.mean(0)
    if sr != 32000:
        wav = torchaudio.functional.resample(wav, sr, 32000)
    return wav


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "shared", "data")
    models = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "..", "..", "..", "shared", "models")
    torch.manual_seed(0)
    net = MN04().eval()
    sd = torch.load(os.path.join(models, "efficientat", "mn04_as_mAP_432.pt"), map_location="cpu")
    net.load_state_dict(sd, strict=True)
    labels = [l.split(",", 2)[2].strip().strip('"') for l in
              open(os.path.join(models, "audioset", "class_labels_indices.csv")).read().splitlines()[1:]]
    clips = [  # (relative path, start seconds, seconds, must be Speech top-1)
        ("ravdess/Actor_05/03-01-05-02-02-01-05.flac", 0.6, 2.5, True),
        ("ravdess/Actor_01/03-01-02-01-01-02-01.flac", 0.6, 2.5, True),
        ("music-4q/Q1/MT0000040632.mp3", 3.0, 2.5, False),
    ]
    with h5py.File(OUT + ".tmp", "w") as f:
        f.attrs["model"] = "mn04_as_mAP_432.pt"
        for i, (rel, start, secs, speech) in enumerate(clips):
            wav = load_clip(os.path.join(data, rel))
            s0, n = int(start * 32000), int(secs * 32000)
            wav = wav[s0:s0 + n]
            mel = logmel(wav)                      # (128, T)
            with torch.no_grad():
                logits, emb = net(mel[None, None])
            scores = torch.sigmoid(logits)[0]
            top = torch.argsort(scores, descending=True)[:5]
            print(rel, mel.shape[1], "frames:",
                  ", ".join(f"{labels[j]} {scores[j]:.3f}" for j in top.tolist()))
            if speech:
                assert top[0].item() == 0, f"{rel}: top-1 is {labels[top[0]]}, expected Speech"
            g = f.create_group(f"clip{i}")
            g.attrs["path"] = rel
            g.attrs["start"] = s0
            g.attrs["length"] = n
            g.create_dataset("mel", data=mel.T.contiguous().numpy().astype(np.float32),
                             compression="gzip", shuffle=True)
            g.create_dataset("embedding", data=emb[0].numpy().astype(np.float32))
            g.create_dataset("scores", data=scores.numpy().astype(np.float32))
            g.create_dataset("logits", data=logits[0].numpy().astype(np.float32))
            g.create_dataset("layers", data=net.layer_stats.numpy().astype(np.float32))
    os.replace(OUT + ".tmp", OUT)
    print(OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
