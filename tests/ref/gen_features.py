#!/usr/bin/env python3
"""gen_features.py — numpy port of librosa 0.10.2's handcrafted features, and
the fixture tests/fixtures/features.h5 that tests/test_features.c checks.

librosa is not installed here, so this file re-implements, from librosa
0.10.2's source (feature/spectral.py, onset.py, feature/rhythm.py,
filters.py, core/pitch.py), the definitions the C engine matches: centred
STFT with zero ('constant') padding, slaney mel, power_to_db, DCT-II ortho
MFCC, chroma_stft (+ estimate_tuning), spectral contrast/centroid/bandwidth/
roll-off, zero-crossing rate, RMS, onset strength and tempo. Same dtypes as
librosa (float32 spectrogram, float64 filterbanks). scripts/bench_features.py
imports this module as the numpy side of the benchmark.
Run: /usr/bin/python3 tests/ref/gen_features.py   (needs ../shared/data)
"""
import os
import sys

import numpy as np
import scipy.fft
import scipy.signal

# ---------------------------------------------------------------- basics


def hann(n):
    return scipy.signal.get_window("hann", n, fftbins=True)


def stft_mag(y, n_fft=2048, hop=512):
    """|STFT| as librosa.stft(center=True, pad_mode='constant'), float32, (frames, bins)."""
    y = np.asarray(y, dtype=np.float32)
    yp = np.pad(y, (n_fft // 2, n_fft // 2), mode="constant")
    n_frames = 1 + (len(yp) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    frames = yp[idx] * hann(n_fft)[None, :]
    X = np.fft.rfft(frames, axis=1).astype(np.complex64)
    return np.abs(X)


def hz_to_mel(f):
    f = np.asanyarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    log_t = f >= 1000.0
    mels = np.where(log_t, min_log_mel + np.log(np.maximum(f, 1e-30) / 1000.0) / logstep, mels)
    return mels


def mel_to_hz(m):
    m = np.asanyarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_mel = 1000.0 / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, 1000.0 * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filters(sr, n_fft, n_mels=128, fmin=0.0, fmax=None):
    """librosa.filters.mel (slaney scale, slaney norm), float32 (n_mels, bins)."""
    if fmax is None:
        fmax = sr / 2.0
    fftfreqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    w = np.zeros((n_mels, len(fftfreqs)), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        w[i] = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return w


def power_to_db(S, amin=1e-10, top_db=80.0):
    d = 10.0 * np.log10(np.maximum(amin, S))
    d -= 10.0 * np.log10(max(amin, 1.0))
    if top_db is not None:
        d = np.maximum(d, d.max() - top_db)
    return d


def normalize(S, norm, axis):
    """librosa.util.normalize with fill=None, threshold = tiny(S)."""
    tiny = np.finfo(S.dtype).tiny
    mag = np.abs(S).astype(float)
    if norm == np.inf:
        length = np.max(mag, axis=axis, keepdims=True)
    else:
        length = np.sum(mag ** norm, axis=axis, keepdims=True) ** (1.0 / norm)
    length[length < tiny] = 1.0
    return (S / length).astype(S.dtype)


# ---------------------------------------------------------------- features
# All frame-wise outputs are (frames, dim): the C layout (librosa's transposed).


def melspec(mag, sr, n_fft, n_mels=128):
    S = mag ** 2
    return (S @ mel_filters(sr, n_fft, n_mels).T).astype(np.float32)


def mfcc_from_db(mel_db, n_mfcc=20):
    return scipy.fft.dct(mel_db, axis=1, type=2, norm="ortho")[:, :n_mfcc]


def chroma_filters(sr, n_fft, n_chroma=12, tuning=0.0):
    """librosa.filters.chroma (ctroct 5, octwidth 2, norm 2, base_c), float32 (12, bins)."""
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    A440 = 440.0 * 2.0 ** (tuning / n_chroma)
    frqbins = n_chroma * np.log2(frequencies / (A440 / 16))
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    D = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    n_chroma2 = np.round(float(n_chroma) / 2)
    D = np.remainder(D + n_chroma2 + 10 * n_chroma, n_chroma) - n_chroma2
    wts = np.exp(-0.5 * (2 * D / np.tile(binwidthbins, (n_chroma, 1))) ** 2)
    wts = normalize(wts, 2, 0)
    wts *= np.tile(np.exp(-0.5 * ((frqbins / n_chroma - 5.0) / 2.0) ** 2), (n_chroma, 1))
    wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    return np.ascontiguousarray(wts[:, :int(1 + n_fft / 2)], dtype=np.float32)


def parabolic_shift(S):
    """librosa.core.pitch._parabolic_interpolation along axis 1 of (frames, bins)."""
    sh = np.zeros_like(S)
    a = S[:, 2:] + S[:, :-2] - 2 * S[:, 1:-1]
    b = (S[:, 2:] - S[:, :-2]) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(np.abs(b) >= np.abs(a), 0, -b / a)
    sh[:, 1:-1] = v
    return sh


def estimate_tuning(S, sr, n_fft, bins_per_octave=12, resolution=0.01):
    """librosa.estimate_tuning(S=S) via piptrack(fmin 150, fmax 4000, threshold 0.1)."""
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    avg = np.gradient(S, axis=1)
    shift = parabolic_shift(S)
    dskew = 0.5 * avg * shift
    fmax = min(4000.0, sr / 2.0)
    freq_mask = (150.0 <= fft_freqs) & (fft_freqs < fmax)
    ref = 0.1 * S.max(axis=1, keepdims=True)
    St = S * (S > ref)
    lm = np.zeros_like(St, dtype=bool)
    lm[:, 1:-1] = (St[:, 1:-1] > St[:, :-2]) & (St[:, 1:-1] >= St[:, 2:])
    lm[:, -1] = St[:, -1] > St[:, -2]
    fi, bi = np.nonzero(freq_mask[None, :] & lm)
    pitches = np.zeros_like(S)
    mags = np.zeros_like(S)
    pitches[fi, bi] = (bi + shift[fi, bi]) * float(sr) / n_fft
    mags[fi, bi] = S[fi, bi] + dskew[fi, bi]
    pm = pitches > 0
    thr = np.median(mags[pm]) if pm.any() else 0.0
    freqs = pitches[(mags >= thr) & pm]
    freqs = freqs[freqs > 0]
    if not np.any(freqs):
        return 0.0
    residual = np.mod(bins_per_octave * np.log2(freqs / (440.0 / 16)), 1.0)
    residual[residual >= 0.5] -= 1.0
    bins = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / resolution)) + 1)
    counts, edges = np.histogram(residual, bins)
    return float(edges[np.argmax(counts)])


def chroma_stft(S, sr, n_fft, tuning=0.0):
    """S: power (or magnitude) spectrogram (frames, bins); tuning None = estimate."""
    if tuning is None:
        tuning = estimate_tuning(S, sr, n_fft)
    fb = chroma_filters(sr, n_fft, 12, tuning)
    raw = (S @ fb.T).astype(np.float32)
    return normalize(raw, np.inf, 1), tuning


def spectral_centroid(mag, sr, n_fft):
    freq = np.fft.rfftfreq(n_fft, 1.0 / sr)
    return np.sum(freq[None, :] * normalize(mag, 1, 1), axis=1)


def spectral_bandwidth(mag, sr, n_fft, p=2.0):
    freq = np.fft.rfftfreq(n_fft, 1.0 / sr)
    c = spectral_centroid(mag, sr, n_fft)
    dev = np.abs(c[:, None] - freq[None, :])
    return np.sum(normalize(mag, 1, 1) * dev ** p, axis=1) ** (1.0 / p)


def spectral_rolloff(mag, sr, n_fft, roll_percent=0.85):
    freq = np.fft.rfftfreq(n_fft, 1.0 / sr)
    total = np.cumsum(mag, axis=1)
    thr = roll_percent * total[:, -1:]
    ind = np.where(total < thr, np.nan, 1)
    return np.nanmin(ind * freq[None, :], axis=1)


def spectral_contrast(mag, sr, n_fft, fmin=200.0, n_bands=6, quantile=0.02):
    freq = np.fft.rfftfreq(n_fft, 1.0 / sr)
    octa = np.zeros(n_bands + 2)
    octa[1:] = fmin * 2.0 ** np.arange(0, n_bands + 1)
    T = mag.shape[0]
    valley = np.zeros((T, n_bands + 1))
    peak = np.zeros_like(valley)
    for k, (lo, hi) in enumerate(zip(octa[:-1], octa[1:])):
        band = np.logical_and(freq >= lo, freq <= hi)
        idx = np.flatnonzero(band)
        if k > 0:
            band[idx[0] - 1] = True
        if k == n_bands:
            band[idx[-1] + 1:] = True
        sub = mag[:, band]
        if k < n_bands:
            sub = sub[:, :-1]
        q = int(np.maximum(np.rint(quantile * np.sum(band)), 1))
        srt = np.sort(sub, axis=1)
        valley[:, k] = np.mean(srt[:, :q], axis=1)
        peak[:, k] = np.mean(srt[:, -q:], axis=1)
    return power_to_db(peak) - power_to_db(valley)


def frame_signal(y, frame, hop):
    n = 1 + (len(y) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    return y[idx]


def zero_crossing_rate(y, frame=2048, hop=512):
    yp = np.pad(np.asarray(y, dtype=np.float32), (frame // 2, frame // 2), mode="edge")
    fr = frame_signal(yp, frame, hop)
    thr = 1e-10
    z = np.where(np.abs(fr) <= thr, 0, fr)
    cr = np.signbit(z[:, 1:]) != np.signbit(z[:, :-1])
    return np.sum(cr, axis=1) / frame


def rms(y, frame=2048, hop=512):
    yp = np.pad(np.asarray(y, dtype=np.float32), (frame // 2, frame // 2), mode="constant")
    fr = frame_signal(yp, frame, hop)
    return np.sqrt(np.mean(fr.astype(np.float32) ** 2, axis=1))


def onset_strength(mel_db, n_fft=2048, hop=512, lag=1):
    """librosa.onset.onset_strength from a dB mel spectrogram (frames, mels)."""
    env = np.maximum(0.0, mel_db[lag:] - mel_db[:-lag])
    env = np.mean(env, axis=1)
    pad = lag + n_fft // (2 * hop)
    env = np.pad(env, (pad, 0))
    return env[:mel_db.shape[0]].astype(np.float32)


def tempogram_mean(onset, win):
    n = len(onset)
    p = np.pad(onset, (win // 2, win // 2), mode="linear_ramp", end_values=(0, 0))
    fr = frame_signal(p, win, 1)[:n] * hann(win)[None, :]
    n_pad = scipy.fft.next_fast_len(2 * win - 1, real=True)
    ps = np.abs(np.fft.rfft(fr, n=n_pad, axis=1)) ** 2
    ac = np.fft.irfft(ps, n=n_pad, axis=1)[:, :win]
    return np.mean(normalize(ac, np.inf, 1), axis=0)


def tempo(onset, sr, hop=512, start_bpm=120.0, std_bpm=1.0, ac_size=8.0, max_tempo=320.0):
    win = int(int(ac_size * sr) // hop)
    tg = tempogram_mean(onset, win)
    bpms = np.zeros(win)
    bpms[0] = np.inf
    bpms[1:] = 60.0 * sr / (hop * np.arange(1.0, win))
    with np.errstate(invalid="ignore", divide="ignore"):
        logprior = -0.5 * ((np.log2(bpms) - np.log2(start_bpm)) / std_bpm) ** 2
    max_idx = int(np.argmax(bpms < max_tempo))
    logprior[:max_idx] = -np.inf
    return float(bpms[np.argmax(np.log1p(1e6 * tg) + logprior)]), tg


def all_frames(y, sr, n_fft=2048, hop=512, n_mels=128, n_mfcc=20, tuning=0.0, chroma_power=2):
    """Every frame-wise feature of a clip, as a dict of (frames, dim) arrays."""
    mag = stft_mag(y, n_fft, hop)
    mel = melspec(mag, sr, n_fft, n_mels)
    mel_db = power_to_db(mel)
    chroma, tun = chroma_stft(mag ** chroma_power, sr, n_fft, tuning)
    onset = onset_strength(mel_db, n_fft, hop)
    bpm, tg = tempo(onset, sr, hop)
    return dict(mel=mel, mel_db=mel_db, mfcc=mfcc_from_db(mel_db, n_mfcc), chroma=chroma,
                tuning=tun, contrast=spectral_contrast(mag, sr, n_fft),
                centroid=spectral_centroid(mag, sr, n_fft),
                bandwidth=spectral_bandwidth(mag, sr, n_fft),
                rolloff=spectral_rolloff(mag, sr, n_fft), zcr=zero_crossing_rate(y, n_fft, hop),
                rms=rms(y, n_fft, hop), onset=onset, tempo=bpm, tempogram=tg)


# ---------------------------------------------------------------- pooling


def delta(x, width=9):
    """librosa.feature.delta(order 1, mode 'interp') along axis 0 (frames)."""
    if x.shape[0] >= width:
        return scipy.signal.savgol_filter(x, width, polyorder=1, deriv=1, axis=0, mode="interp")
    t = np.arange(x.shape[0], dtype=np.float64)
    if len(t) < 2:
        return np.zeros_like(x)
    tc = t - t.mean()
    slope = (tc[:, None] * (x - x.mean(axis=0))).sum(axis=0) / (tc ** 2).sum()
    return np.tile(slope, (x.shape[0], 1))


def pool(x, stat):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if stat == "mean":
        return x.mean(axis=0)
    if stat == "std":
        return x.std(axis=0)
    if stat == "min":
        return x.min(axis=0)
    if stat == "max":
        return x.max(axis=0)
    if stat == "skew":
        m = x.mean(axis=0)
        m2 = ((x - m) ** 2).mean(axis=0)
        m3 = ((x - m) ** 3).mean(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = m3 / m2 ** 1.5
        return np.where(m2 > 0, s, 0.0)
    if stat == "delta_mean":
        return delta(x).mean(axis=0)
    if stat == "delta_std":
        return delta(x).std(axis=0)
    raise ValueError(stat)


MUSIC_BLOCKS = ["mfcc", "chroma", "contrast", "centroid", "bandwidth", "rolloff", "zcr", "rms"]
SPEECH_BLOCKS = ["zcr", "chroma", "mfcc", "rms", "mel"]


def music_paper(y, sr, stats=("mean", "std"), **kw):
    f = all_frames(y, sr, **kw)
    v = [pool(f[b], s) for b in MUSIC_BLOCKS for s in stats]
    return np.concatenate(v + [np.array([f["tempo"]])]).astype(np.float32)


def speech_162(y, sr, stats=("mean",), **kw):
    kw.setdefault("chroma_power", 1)
    f = all_frames(y, sr, **kw)
    return np.concatenate([pool(f[b], s) for b in SPEECH_BLOCKS for s in stats]).astype(np.float32)


def mfcc_stats(y, sr, n_mfcc=20, stats=("mean", "std")):
    mag = stft_mag(y)
    m = mfcc_from_db(power_to_db(melspec(mag, sr, 2048)), n_mfcc)
    return np.concatenate([pool(m, s) for s in stats]).astype(np.float32)


# ---------------------------------------------------------------- fixture


def clicks(bpm, sr=22050, seconds=10):
    """Unit impulses at k*60*sr/bpm (integer division, as the C test builds them)."""
    y = np.zeros(sr * seconds, dtype=np.float32)
    k = 0
    while (k * 60 * sr) // bpm < len(y):
        y[(k * 60 * sr) // bpm] = 1.0
        k += 1
    return y


def load_excerpt(path, sr, start, seconds):
    import torch
    import torchaudio
    w, fsr = torchaudio.load(path)
    w = w.mean(dim=0, keepdim=True)
    w = torchaudio.functional.resample(w, fsr, sr)
    y = w[0].numpy().astype(np.float32)
    a = int(start * sr)
    return np.ascontiguousarray(y[a:a + int(seconds * sr)])


def main():
    import h5py
    root = os.environ.get("MELODIC_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))
    out = os.path.join(os.path.dirname(__file__), "../fixtures/features.h5")
    sr = 22050
    clips = {
        "speech": load_excerpt(os.path.join(root, "ravdess/Actor_01/03-01-05-01-01-01-01.flac"), sr, 1.0, 1.0),
        "music": load_excerpt(os.path.join(root, "music-4q/Q1/MT0000040632.mp3"), sr, 2.0, 2.0),
    }
    all_stats = ("mean", "std", "min", "max", "skew", "delta_mean", "delta_std")
    z = dict(compression="gzip", compression_opts=9, shuffle=True)
    with h5py.File(out, "w") as h:
        h.attrs["source"] = "tests/ref/gen_features.py (numpy port of librosa 0.10.2)"
        # non-default settings: 16 kHz, n_fft 1024, hop 256, 64 mels, 13 MFCCs
        y16 = load_excerpt(os.path.join(root, "ravdess/Actor_02/03-01-04-01-01-01-02.flac"),
                           16000, 1.0, 1.0)
        g = h.create_group("speech16k")
        g.create_dataset("y", data=y16, **z)
        g["params"] = np.array([16000, 1024, 256, 64, 13], dtype=np.int32)
        f = all_frames(y16, 16000, n_fft=1024, hop=256, n_mels=64, n_mfcc=13)
        for k in ["mel_db", "mfcc", "chroma", "contrast", "centroid", "bandwidth", "rolloff",
                  "zcr", "rms", "onset"]:
            g.create_dataset(k, data=np.asarray(f[k], dtype=np.float32), **z)
        g["tempo"] = np.float64(f["tempo"])
        ch, tun = chroma_stft(stft_mag(y16, 1024, 256) ** 2, 16000, 1024, None)
        g.create_dataset("chroma_est", data=ch, **z)
        g["tuning_est"] = np.float64(tun)
        print(f"speech16k: {len(y16)} samples, {f['mel_db'].shape[0]} frames, tempo {f['tempo']:.2f},"
              f" estimated tuning {tun:.2f}")
        for name, y in clips.items():
            g = h.create_group(name)
            g.create_dataset("y", data=y, **z)
            f = all_frames(y, sr)
            for k in ["mel_db", "mfcc", "chroma", "contrast", "centroid", "bandwidth", "rolloff",
                      "zcr", "rms", "onset"]:
                g.create_dataset(k, data=np.asarray(f[k], dtype=np.float32), **z)
            g.create_dataset("mel_mean", data=f["mel"].mean(axis=0).astype(np.float32))
            g["tempo"] = np.float64(f["tempo"])
            ch, tun = chroma_stft(stft_mag(y) ** 2, sr, 2048, None)
            g.create_dataset("chroma_est", data=ch, **z)
            g["tuning_est"] = np.float64(tun)
            g.create_dataset("music_paper", data=music_paper(y, sr, all_stats))
            g.create_dataset("speech_162", data=speech_162(y, sr))
            g.create_dataset("mfcc_stats40", data=mfcc_stats(y, sr, 40))
            print(f"{name}: {len(y)} samples, {f['mel_db'].shape[0]} frames, tempo {f['tempo']:.2f},"
                  f" estimated tuning {tun:.2f}")
        g = h.create_group("clicks")
        bpms = [90, 120, 150]
        ref = [tempo(onset_strength(power_to_db(melspec(stft_mag(clicks(b)), sr, 2048))), sr)[0]
               for b in bpms]
        g["bpm"] = np.array(bpms, dtype=np.int32)
        g["tempo"] = np.array(ref, dtype=np.float64)
        print("click tempi", ref)
    print("wrote", out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
