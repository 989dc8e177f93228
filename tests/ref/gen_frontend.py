#!/usr/bin/python3
"""gen_frontend.py — reference fixtures for tests/test_frontend.c and tests/test_audio.c.

Run from the repository root with Debian's python (torch 1.13, torchaudio 0.13):
    /usr/bin/python3 tests/ref/gen_frontend.py [DATA_ROOT]
Writes tests/fixtures/frontend_{fbanks,stft,trim,resample,speech,stereo,music}.h5.

References:
  - filterbanks: torchaudio.functional.melscale_fbanks (slaney scale + slaney norm, which is
    librosa.filters.mel, the bank torchlibrosa/PANNs use) and
    torchaudio.compliance.kaldi.get_mel_banks padded with a zero Nyquist column (EfficientAT);
  - STFT: torch.stft;
  - front ends: cnn14 / cnn14_16k as torchlibrosa Spectrogram + LogmelFilterBank (expressed
    with torchaudio's MelSpectrogram, same maths), mn04 as EfficientAT AugmentMelSTFT in eval
    mode (re-expressed with torch ops here);
  - trim: a numpy re-implementation of librosa 0.10 effects.trim (librosa is not installed):
    feature.rms(center=True, pad_mode='constant') in float32, amplitude_to_db(ref=np.max,
    amin=1e-5, top_db=None), start = first*hop, end = min(n, (last+1)*hop);
  - resampling: torchaudio.functional.resample and scipy.signal.resample_poly.
The front-end fixtures store the engine-independent input (decoded with torchaudio,
down-mixed by mean, resampled with torchaudio) next to the log-mel so that the C test feeds
the same waveform to its front end.
"""
import os
import sys

import h5py
import numpy as np
import scipy.signal
import torch
import torchaudio
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as AF

torch.manual_seed(0)
ROOT = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
OUT = "tests/fixtures"
GZ = dict(compression="gzip", compression_opts=9, shuffle=True)

CLIPS = {
    # name: (path under data root, segment start in seconds)
    "speech": ("ravdess/Actor_01/03-01-01-01-01-01-01.flac", 1.2),
    "stereo": ("ravdess/Actor_01/03-01-02-01-01-02-01.flac", 1.2),
    "music": ("music-4q/Q1/MT0000040632.mp3", 4.0),
}
SEG_SECONDS = 0.8


def slaney_fb(sr, n_fft, n_mels, fmin, fmax):
    """(n_mels, n_fft/2+1) librosa-compatible slaney filterbank."""
    return AF.melscale_fbanks(n_fft // 2 + 1, fmin, fmax, n_mels, sr, norm="slaney",
                              mel_scale="slaney").T.contiguous()


def kaldi_fb(sr, n_fft, n_mels, fmin, fmax):
    fb, _ = kaldi.get_mel_banks(n_mels, n_fft, sr, fmin, fmax, vtln_low=100.0, vtln_high=-500.0,
                                vtln_warp_factor=1.0)
    return torch.nn.functional.pad(fb, (0, 1), mode="constant", value=0)


def logmel_cnn14(wave, sr, n_fft, hop, fmin, fmax):
    """torchlibrosa Spectrogram(hann periodic, center, reflect, power 2) + LogmelFilterBank
    (librosa slaney mel, 10*log10(clamp(x, 1e-10)), ref 1, top_db None) → (frames, mels)."""
    spec = torch.stft(wave, n_fft, hop_length=hop, win_length=n_fft,
                      window=torch.hann_window(n_fft, periodic=True), center=True,
                      pad_mode="reflect", return_complex=True)
    power = spec.real ** 2 + spec.imag ** 2                       # (bins, frames)
    mel = torch.matmul(slaney_fb(sr, n_fft, 64, fmin, fmax), power)
    db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
    # the same through torchaudio's MelSpectrogram, as a cross-check of the formulation
    ms = torchaudio.transforms.MelSpectrogram(sr, n_fft=n_fft, hop_length=hop, f_min=fmin,
                                              f_max=fmax, n_mels=64, power=2.0, center=True,
                                              pad_mode="reflect", norm="slaney",
                                              mel_scale="slaney")(wave)
    assert torch.allclose(ms, mel, rtol=1e-4, atol=1e-9)
    return db.T.contiguous()


def logmel_mn04(wave):
    """EfficientAT AugmentMelSTFT.forward in eval mode → (frames, 128)."""
    x = torch.nn.functional.conv1d(wave.view(1, 1, -1),
                                   torch.tensor([[[-0.97, 1.0]]])).view(-1)
    spec = torch.stft(x, 1024, hop_length=320, win_length=800,
                      window=torch.hann_window(800, periodic=False), center=True,
                      normalized=False, return_complex=True)
    power = spec.real ** 2 + spec.imag ** 2
    mel = torch.matmul(kaldi_fb(32000, 1024, 128, 0.0, 15000.0), power)
    mel = (mel + 0.00001).log()
    mel = (mel + 4.5) / 5.0
    return mel.T.contiguous()


def librosa_trim_bounds(y, top_db=60.0, frame_length=2048, hop_length=512):
    """librosa.effects.trim(y)[1] re-implemented with numpy (librosa 0.10 semantics)."""
    y = np.asarray(y, dtype=np.float32)
    pad = frame_length // 2
    yp = np.pad(y, (pad, pad), mode="constant")
    n_frames = 1 + (len(yp) - frame_length) // hop_length
    idx = np.arange(frame_length)[None, :] + hop_length * np.arange(n_frames)[:, None]
    frames = yp[idx]                                                   # (frames, frame_length)
    power = np.mean(np.abs(frames).astype(np.float32) ** 2, axis=-1, dtype=np.float32)
    rms = np.sqrt(power)
    # amplitude_to_db(rms, ref=np.max, top_db=None): amin 1e-5 → power_to_db(amin=1e-10)
    mag = np.abs(rms)
    ref = np.max(mag)
    p = np.square(mag)
    db = 10.0 * np.log10(np.maximum(1e-10, p)) - 10.0 * np.log10(np.maximum(1e-10, ref ** 2))
    nonsilent = db > -top_db
    nz = np.flatnonzero(nonsilent)
    if nz.size == 0:
        return 0, 0
    start = int(nz[0] * hop_length)
    end = min(len(y), int((nz[-1] + 1) * hop_length))
    return start, end


def load_mono(path):
    w, sr = torchaudio.load(path)
    return w.mean(dim=0), sr, w


def gen_fbanks():
    with h5py.File(f"{OUT}/frontend_fbanks.h5", "w") as f:
        f.create_dataset("slaney_16k_512_64_50_8000", data=slaney_fb(16000, 512, 64, 50, 8000).numpy(), **GZ)
        f.create_dataset("slaney_32k_1024_64_50_14000", data=slaney_fb(32000, 1024, 64, 50, 14000).numpy(), **GZ)
        htk = AF.melscale_fbanks(257, 0.0, 8000.0, 40, 16000, norm=None, mel_scale="htk").T
        f.create_dataset("htk_16k_512_40_0_8000_nonorm", data=htk.numpy(), **GZ)
        f.create_dataset("kaldi_32k_1024_128_0_15000", data=kaldi_fb(32000, 1024, 128, 0.0, 15000.0).numpy(), **GZ)


def gen_stft():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3000, generator=g) * 0.3
    with h5py.File(f"{OUT}/frontend_stft.h5", "w") as f:
        f["x"] = x.numpy().astype(np.float32)
        f["hann_periodic_512"] = torch.hann_window(512, periodic=True).numpy()
        f["hann_symmetric_800"] = torch.hann_window(800, periodic=False).numpy()
        s = torch.stft(x, 512, hop_length=160, window=torch.hann_window(512), center=True,
                       pad_mode="reflect", return_complex=True)
        f["power_512_160_reflect"] = (s.abs() ** 2).T.contiguous().numpy()
        w = torch.hann_window(800, periodic=False)
        s = torch.stft(x, 1024, hop_length=320, win_length=800, window=w, center=True,
                       pad_mode="reflect", return_complex=True)
        f["mag_1024_320_win800_reflect"] = s.abs().T.contiguous().numpy()
        s = torch.stft(x, 400, hop_length=100, window=torch.hann_window(400), center=True,
                       pad_mode="constant", return_complex=True)
        f["power_400_100_constant"] = (s.abs() ** 2).T.contiguous().numpy()
        s = torch.stft(x, 256, hop_length=128, window=torch.hann_window(256), center=False,
                       return_complex=True)
        f["power_256_128_nocenter"] = (s.abs() ** 2).T.contiguous().numpy()


def gen_trim():
    rng = np.random.default_rng(7)
    sr = 16000
    sigs = []
    # 0: silence / noise burst / silence
    s = np.zeros(int(1.2 * sr), np.float32)
    s[int(0.3 * sr):int(0.8 * sr)] = rng.normal(0, 0.3, int(0.5 * sr))
    sigs.append((s, 60.0, 2048, 512))
    # 1: a -70 dB noise floor everywhere, a loud burst in the middle, a decaying tail
    s = rng.normal(0, 10 ** (-70 / 20) * 0.3, int(1.5 * sr)).astype(np.float32)
    b0, b1 = int(0.4 * sr), int(0.9 * sr)
    s[b0:b1] += rng.normal(0, 0.3, b1 - b0)
    t = np.arange(len(s) - b1) / sr
    s[b1:] += rng.normal(0, 0.3, len(s) - b1) * np.exp(-t / 0.05)
    sigs.append((s.astype(np.float32), 60.0, 2048, 512))
    # 2: the same with top_db 30, frame 1024, hop 256
    sigs.append((s.astype(np.float32), 30.0, 1024, 256))
    # 3: shorter than a frame
    s = (0.2 * np.sin(2 * np.pi * 300 * np.arange(1000) / sr)).astype(np.float32)
    sigs.append((s, 60.0, 2048, 512))
    # 4: loud to the very end, length not a multiple of hop
    s = np.zeros(20000 + 77, np.float32)
    s[9000:] = rng.normal(0, 0.2, len(s) - 9000)
    sigs.append((s, 60.0, 2048, 512))
    with h5py.File(f"{OUT}/frontend_trim.h5", "w") as f:
        for i, (s, top_db, fl, hl) in enumerate(sigs):
            f.create_dataset(f"sig{i}", data=s, **GZ)
            b = librosa_trim_bounds(s, top_db, fl, hl)
            f[f"bounds{i}"] = np.array(b, np.int64)
            f[f"params{i}"] = np.array([top_db, fl, hl], np.float64)
        f.attrs["n_synthetic"] = len(sigs)
        # real clips at their native 48 kHz (FLAC decodes bit-identically in both engines)
        for name in ("speech", "stereo"):
            path = os.path.join(ROOT, CLIPS[name][0])
            mono, sr0, w = load_mono(path)
            b = librosa_trim_bounds(mono.numpy(), 60.0, 2048, 512)
            f[f"{name}_bounds"] = np.array(b, np.int64)
            f[f"{name}_n"] = np.int64(len(mono))
            f[f"{name}_channels"] = np.int64(w.shape[0])
            f[f"{name}_head"] = mono[48000:48512].numpy()     # decoded + down-mixed samples
            f.attrs[f"{name}_path"] = CLIPS[name][0]


def gen_resample():
    path = os.path.join(ROOT, CLIPS["speech"][0])
    mono, sr0, _ = load_mono(path)
    assert sr0 == 48000
    seg = mono[int(1.2 * sr0):int(1.5 * sr0)].contiguous()
    with h5py.File(f"{OUT}/frontend_resample.h5", "w") as f:
        f.create_dataset("x48k", data=seg.numpy(), **GZ)
        f["torchaudio_16k"] = AF.resample(seg, 48000, 16000).numpy()
        f["torchaudio_32k"] = AF.resample(seg, 48000, 32000).numpy()
        f["scipy_16k"] = scipy.signal.resample_poly(seg.numpy().astype(np.float64), 1, 3).astype(np.float32)
        f["scipy_32k"] = scipy.signal.resample_poly(seg.numpy().astype(np.float64), 2, 3).astype(np.float32)


def gen_clip(name):
    rel, start = CLIPS[name]
    mono, sr0, w = load_mono(os.path.join(ROOT, rel))
    seg = mono[int(start * sr0):int((start + SEG_SECONDS) * sr0)].contiguous()
    w16 = AF.resample(seg, sr0, 16000) if sr0 != 16000 else seg
    w32 = AF.resample(seg, sr0, 32000) if sr0 != 32000 else seg
    with h5py.File(f"{OUT}/frontend_{name}.h5", "w") as f:
        f.attrs["source"] = rel
        f.attrs["source_sr"] = sr0
        f.attrs["source_channels"] = w.shape[0]
        f.attrs["segment_start_s"] = start
        f.create_dataset("wave_16k", data=w16.numpy(), **GZ)
        f.create_dataset("wave_32k", data=w32.numpy(), **GZ)
        lm16 = logmel_cnn14(w16, 16000, 512, 160, 50.0, 8000.0)
        lm32 = logmel_cnn14(w32, 32000, 1024, 320, 50.0, 14000.0)
        lmmn = logmel_mn04(w32)
        f.create_dataset("logmel_cnn14_16k", data=lm16.numpy(), **GZ)
        f.create_dataset("logmel_cnn14", data=lm32.numpy(), **GZ)
        f.create_dataset("logmel_mn04", data=lmmn.numpy(), **GZ)
        for k, lm in (("cnn14_16k", lm16), ("mn04", lmmn)):
            a = lm.numpy().astype(np.float64)
            f[f"stats_{k}"] = np.concatenate([a.mean(0), a.std(0)]).astype(np.float32)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    gen_fbanks()
    gen_stft()
    gen_trim()
    gen_resample()
    for c in CLIPS:
        gen_clip(c)
    for fn in sorted(os.listdir(OUT)):
        if fn.startswith("frontend"):
            print(f"{OUT}/{fn}: {os.path.getsize(os.path.join(OUT, fn))} bytes")
