#!/usr/bin/python3
"""gen_cnn14.py — reference outputs for the CNN14 engine (src/nn/cnn14.c).

Builds the PANNs Cnn14 network (qiuqiangkong/audioset_tagging_cnn,
pytorch/models.py: bn0 over mel bins, six blocks of conv3x3-BN-ReLU x2 +
2x2 average pooling (1x1 in the last), mean over mel, max + mean over time,
fc1 + ReLU, fc_audioset + sigmoid), written here from reading that code, at
reduced width with seeded random weights and non-trivial BN statistics.
The front end is not part of this module: the log-mel input is stored, so
the network test does not depend on src/dsp.

Writes (run from the repository root with /usr/bin/python3):
  tests/fixtures/pt_cnn14/cnn14_w2.pth  checkpoint saved as PANNs saves one:
      torch.save({'iteration': ..., 'model': state_dict}, path) (zip format)
  tests/fixtures/cnn14_w2_weights.h5    the same state dict, one dataset per key
  tests/fixtures/cnn14_io.h5            log-mel inputs and reference outputs
With --fuzz-seeds DIR: tiny checkpoints seeding tests/fuzz/corpus_cnn14/.
With --full DIR: a full-width random checkpoint and one reference output in
DIR (for the full-width test and the benchmark; never committed).
Also usable as a module: make_model(widths, ...), save_panns(...).
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTHS_FULL = (64, 128, 256, 512, 1024, 2048)


class Block(nn.Module):
    """conv3x3 (no bias) - BN - ReLU - conv3x3 - BN - ReLU - avg pool."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x, pool):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool)


class Cnn14Net(nn.Module):
    """PANNs Cnn14 after the front end; input (batch, frames, mel_bins)."""

    def __init__(self, widths=WIDTHS_FULL, emb=None, classes=527, mel_bins=64):
        super().__init__()
        emb = emb or widths[-1]
        self.bn0 = nn.BatchNorm2d(mel_bins)
        cin = 1
        for i, w in enumerate(widths):
            setattr(self, 'conv_block%d' % (i + 1), Block(cin, w))
            cin = w
        self.fc1 = nn.Linear(widths[-1], emb, bias=True)
        self.fc_audioset = nn.Linear(emb, classes, bias=True)

    def forward(self, logmel):
        x = logmel[:, None, :, :]            # (B, 1, T, M)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(6):
            x = getattr(self, 'conv_block%d' % (i + 1))(x, (1, 1) if i == 5 else (2, 2))
        x = torch.mean(x, dim=3)             # (B, C, T')
        x = torch.max(x, dim=2)[0] + torch.mean(x, dim=2)
        emb = F.relu(self.fc1(x))
        return emb, torch.sigmoid(self.fc_audioset(emb))


def randomize(model, seed):
    """Seeded random weights, BN with non-trivial statistics. Conv weights are
    scaled (He) so that activations stay O(1) through the 12 layers."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.2 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.3 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.num_batches_tracked.fill_(12345)
            elif isinstance(m, nn.Linear):
                fan_in = m.weight.shape[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (1.0 / fan_in) ** 0.5)
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
        # bn0 sees log-mel in dB (around -100..+20): statistics of that scale.
        n = model.bn0.num_features
        model.bn0.running_mean.copy_(-40.0 + 10.0 * torch.randn(n, generator=g))
        model.bn0.running_var.copy_(300.0 + 200.0 * torch.rand(n, generator=g))
    model.eval()
    return model


def make_model(widths=WIDTHS_FULL, seed=0):
    return randomize(Cnn14Net(widths), seed)


def save_panns(model, path, frontend_keys=None):
    """Save as PANNs' main.py does: {'iteration', 'model': state_dict}.
    frontend_keys: optional dict of extra front-end tensors (the official
    checkpoints carry spectrogram_extractor.* and logmel_extractor.*)."""
    sd = model.state_dict()
    if frontend_keys:
        merged = dict(frontend_keys)
        merged.update(sd)
        sd = merged
    torch.save({'iteration': 0, 'model': sd}, path)


def logmel(wave, sr, n_fft, hop, fmax):
    """PANNs front end (torchlibrosa-equivalent) with torchaudio: periodic
    Hann, reflect-centred STFT, power, slaney mel with slaney norm, 64 bins
    from 50 Hz, 10*log10(max(x, 1e-10))."""
    import torchaudio
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=sr, n_fft=n_fft, win_length=n_fft, hop_length=hop, f_min=50.0, f_max=fmax,
        n_mels=64, power=2.0, center=True, pad_mode='reflect', norm='slaney',
        mel_scale='slaney')
    m = mel(wave)                           # (64, T)
    return (10.0 * torch.log10(torch.clamp(m, min=1e-10))).T.contiguous()


def load_clip(path, sr, seconds=None, offset=0.0):
    import torchaudio
    x, fsr = torchaudio.load(path)
    x = x.mean(0)
    if fsr != sr:
        x = torchaudio.functional.resample(x, fsr, sr)
    s = int(offset * sr)
    x = x[s:] if seconds is None else x[s:s + int(round(seconds * sr))]
    return x


def full_check(outdir, frames=101, seed=7):
    """Full-width check data (not committed): a PANNs-format checkpoint of a
    full-width Cnn14 with random weights, plus front-end tensors as the
    official checkpoints carry them, and one random log-mel input with
    PyTorch's outputs, into outdir/cnn14_full.pth and outdir/cnn14_full_io.h5."""
    import h5py
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(seed)
    model = make_model(WIDTHS_FULL, seed=seed)
    front = {'spectrogram_extractor.stft.conv_real.weight': torch.zeros(513, 1, 1024),
             'spectrogram_extractor.stft.conv_imag.weight': torch.zeros(513, 1, 1024),
             'logmel_extractor.melW': torch.zeros(513, 64)}
    save_panns(model, os.path.join(outdir, 'cnn14_full.pth'), front)
    g = torch.Generator().manual_seed(seed + 1)
    lm = -60.0 + 20.0 * torch.randn((frames, 64), generator=g)
    with torch.no_grad():
        emb, scores = model(lm[None])
    with h5py.File(os.path.join(outdir, 'cnn14_full_io.h5'), 'w') as f:
        f.create_dataset('logmel', data=lm.numpy())
        f.create_dataset('embedding', data=emb[0].numpy())
        f.create_dataset('scores', data=scores[0].numpy())


def fuzz_seeds(outdir):
    """Tiny PANNs-format checkpoints (width 1, a few KB) as fuzzing seeds for
    tests/fuzz/fuzz_cnn14.c: one valid, one bare state dict, one misshapen."""
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(3)
    m = randomize(Cnn14Net((1, 1, 1, 1, 1, 1), emb=2, classes=3), 3)
    save_panns(m, os.path.join(outdir, 'tiny.pth'))
    torch.save(m.state_dict(), os.path.join(outdir, 'tiny_bare.pth'))
    sd = m.state_dict()
    sd['fc1.weight'] = torch.zeros(2, 2)
    torch.save({'model': sd}, os.path.join(outdir, 'tiny_badshape.pth'))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == '--full':
        return full_check(sys.argv[2])
    if len(sys.argv) == 3 and sys.argv[1] == '--fuzz-seeds':
        return fuzz_seeds(sys.argv[2])
    torch.manual_seed(0)
    root = os.path.dirname(os.path.abspath(__file__)) + '/../..'
    data = os.environ.get('MELODIC_DATA') or os.path.join(root, '..', 'shared', 'data')
    fix = os.path.join(root, 'tests', 'fixtures')
    widths = (2, 4, 8, 16, 32, 64)          # 1/32 of the full width
    model = make_model(widths, seed=1234)

    os.makedirs(os.path.join(fix, 'pt_cnn14'), exist_ok=True)
    save_panns(model, os.path.join(fix, 'pt_cnn14', 'cnn14_w2.pth'))

    import h5py
    with h5py.File(os.path.join(fix, 'cnn14_w2_weights.h5'), 'w') as f:
        f.attrs['widths'] = np.array(widths, dtype=np.int64)
        g = f.create_group('model')
        for k, v in model.state_dict().items():
            g.create_dataset(k, data=v.numpy())

    rav = os.path.join(data, 'ravdess', 'Actor_01', '03-01-05-01-01-01-01.flac')
    q = os.path.join(data, 'music-4q', 'Q1')
    song = os.path.join(q, sorted(os.listdir(q))[0])
    clips = [
        ('ravdess_0.2s', rav, 32000, 1024, 320, 14000.0, 0.2, 1.2),
        ('ravdess_0.5s', rav, 32000, 1024, 320, 14000.0, 0.5, 1.0),
        ('ravdess_3.7s', rav, 32000, 1024, 320, 14000.0, 3.7, 0.0),
        ('music_10s', song, 32000, 1024, 320, 14000.0, 10.0, 0.0),
        ('ravdess_16k_3.7s', rav, 16000, 512, 160, 8000.0, 3.7, 0.0),
    ]
    with h5py.File(os.path.join(fix, 'cnn14_io.h5'), 'w') as f:
        f.attrs['weights'] = 'cnn14_w2_weights.h5'
        for name, path, sr, n_fft, hop, fmax, sec, off in clips:
            x = load_clip(path, sr, sec, off)
            lm = logmel(x, sr, n_fft, hop, fmax)
            # PANNs fails below 32 frames; the engine pads with -100 dB rows
            # (log-mel of digital silence) at the end: the reference does too.
            pad = max(0, 32 - lm.shape[0])
            lm_in = torch.cat([lm, torch.full((pad, lm.shape[1]), -100.0)]) if pad else lm
            with torch.no_grad():
                emb, scores = model(lm_in[None])
            g = f.create_group(name)
            g.attrs['source'] = os.path.relpath(path, data)
            g.attrs['sample_rate'] = sr
            g.create_dataset('logmel', data=lm.numpy().astype(np.float32))
            g.create_dataset('embedding', data=emb[0].numpy().astype(np.float32))
            g.create_dataset('scores', data=scores[0].numpy().astype(np.float32))
            print('%-18s frames %4d  emb |max| %.4f  scores %.4f..%.4f' % (
                name, lm.shape[0], emb.abs().max(), scores.min(), scores.max()))
        # Feature sets end to end (front end + network) from a stored waveform,
        # so that decoding and resampling stay out of the comparison: PANNs on
        # the clip zero-padded to the 32 frames the network needs.
        for name, sr, n_fft, hop, fmax, sec, off in (
                ('featset_32k_0.2s', 32000, 1024, 320, 14000.0, 0.2, 1.2),
                ('featset_16k_1s', 16000, 512, 160, 8000.0, 1.0, 1.0)):
            x = load_clip(rav, sr, sec, off)
            need = 31 * hop          # 1 + n // hop >= 32 frames (centred STFT)
            xp = torch.cat([x, torch.zeros(max(0, need - x.shape[0]))])
            lm = logmel(xp, sr, n_fft, hop, fmax)
            with torch.no_grad():
                emb, _ = model(lm[None])
            g = f.create_group(name)
            g.attrs['sample_rate'] = sr
            g.create_dataset('wave', data=x.numpy().astype(np.float32))
            g.create_dataset('embedding', data=emb[0].numpy().astype(np.float32))
            print('%-18s samples %5d frames %d' % (name, x.shape[0], lm.shape[0]))


if __name__ == '__main__':
    sys.exit(main())
