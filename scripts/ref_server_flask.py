#!/usr/bin/python3
"""ref_server_flask.py — the reference for scripts/bench_server.py: "a Flask +
PyTorch + scikit-learn app doing the same" as `melodic serve`'s
POST /api/recommend, with the same models read from the same files.

Per request: WAV bytes (scipy) → mono → torchaudio sinc resampling to 32 kHz
→ librosa-rule trim (top_db 60, frames 2048/512, as src/audio/audio.h) →
EfficientAT mn04 log-mel and network (PyTorch, tests/ref/gen_mn04.py's
re-implementation, checkpoint from the model root) → mean embedding →
scikit-learn StandardScaler (the bundle's mean/scale) → the bundle's MLP
(dense 384→256, ReLU, dense →7, softmax; PyTorch) → listener's point on the
valence–arousal plane (NRC VAD table of configs/recommend/default.yaml) →
"match" playlist over the library index (the quadrant with most speech
probability, distance and music confidence with weight 3, MMR on cosine with
λ 0.7, no artist twice in a row; numpy).
Served by Flask's threaded server. Left out: feedback, regulate, multipart.
Usage: /usr/bin/python3 scripts/ref_server_flask.py --speech S.h5 --library L.h5 --port P [--torch-threads N]
"""
import argparse
import io
import os
import sys
import time

import h5py
import numpy as np
import torch
import torchaudio
import yaml
from flask import Flask, jsonify, request
from scipy.io import wavfile
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "ref"))
import gen_mn04  # noqa: E402  (the PyTorch mn04 reference)


def trim(x, top_db=60.0, frame=2048, hop=512):
    """librosa.effects.trim's rule (centred zero-padded frames, RMS in dB vs the loudest)."""
    n = len(x)
    pad = np.pad(x, frame // 2)
    nf = 1 + (len(pad) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(nf)[:, None]
    rms = np.sqrt(np.mean(pad[idx] ** 2, axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-5)) - 20 * np.log10(max(rms.max(), 1e-5))
    keep = np.flatnonzero(db > -top_db)
    if keep.size == 0:
        return x
    return x[keep[0] * hop:min(n, (keep[-1] + 1) * hop)]


class Models:
    def __init__(self, speech, library, model_root, va_path):
        with h5py.File(speech, "r") as f:
            self.labels = [s.decode() if isinstance(s, bytes) else s for s in f["label_names"][()]]
            p = f["model/params"][()].astype(np.float32)
            layers = f["model/layers"][()]
            mean, scale = f["scaler/mean"][()], f["scaler/scale"][()]
        d_in, d_h, d_out = 384, int(layers[0][1]), int(layers[2][1])
        o = 0
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d_in, d_h), torch.nn.ReLU(), torch.nn.Linear(d_h, d_out)).eval()
        for lin, (a, b) in ((self.mlp[0], (d_h, d_in)), (self.mlp[2], (d_out, d_h))):
            lin.weight.data = torch.from_numpy(p[o:o + a * b].reshape(a, b).copy()); o += a * b
            lin.bias.data = torch.from_numpy(p[o:o + a].copy()); o += a
        assert o == p.size, "unexpected MLP layout"
        self.scaler = StandardScaler()
        self.scaler.mean_, self.scaler.scale_ = mean.astype(np.float64), scale.astype(np.float64)
        self.scaler.var_ = self.scaler.scale_ ** 2
        self.scaler.n_features_in_ = d_in
        self.net = gen_mn04.MN04().eval()
        self.net.load_state_dict(torch.load(os.path.join(model_root, "efficientat", "mn04_as_mAP_432.pt"),
                                            map_location="cpu"), strict=True)
        cfg = yaml.safe_load(open(va_path))
        emo = {k.lower(): (2 * v["valence"] - 1, 2 * v["arousal"] - 1) for k, v in cfg["emotions"].items()}
        for k, words in (cfg.get("merges") or {}).items():
            if not any(w != k and w in self.labels for w in words):
                emo[k] = tuple(np.mean([emo[w] for w in words], axis=0))
        self.va = np.array([emo[l.lower()] for l in self.labels], dtype=np.float32)
        with h5py.File(library, "r") as f:
            t = f["tracks"]
            dec = lambda a: [s.decode() if isinstance(s, bytes) else s for s in a]
            self.ids, self.artists, self.titles = dec(t["id"][()]), dec(t["artist"][()]), dec(t["title"][()])
            self.tva, self.conf = t["va"][()], t["confidence"][()]
            self.quad, self.top = t["quadrant"][()], t["top_class"][()]
            e = t["embedding"][()]
            self.emb = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
            self.classes = dec(f["classes/names"][()])

    def classify(self, wav_bytes):
        sr, x = wavfile.read(io.BytesIO(wav_bytes))
        x = x.astype(np.float32) / (32768.0 if x.dtype == np.int16 else 1.0)
        if x.ndim == 2:
            x = x.mean(1)
        dur = len(x) / sr
        w = torch.from_numpy(x)
        if sr != 32000:
            w = torchaudio.functional.resample(w, sr, 32000)
        w = torch.from_numpy(trim(w.numpy()))
        with torch.no_grad():
            mel = gen_mn04.logmel(w)
            _, emb = self.net(mel[None, None])
            z = torch.from_numpy(self.scaler.transform(emb.numpy().astype(np.float64)).astype(np.float32))
            proba = torch.softmax(self.mlp(z), 1)[0].numpy()
        return proba, dur

    def recommend(self, proba, n=10, lam=0.7, w_conf=3.0):
        v = (proba[:, None] * self.va).sum(0) / proba.sum()

        def quadrant(p):
            return 1 if p[0] >= 0 and p[1] >= 0 else 2 if p[1] >= 0 else 3 if p[0] < 0 else 4
        mass = np.zeros(5)
        for k in range(len(proba)):   # the listener's quadrant: most speech probability
            mass[quadrant(self.va[k])] += proba[k]
        q = int(np.argmax(mass[1:])) + 1
        if mass[quadrant(v)] == mass[q]:
            q = quadrant(v)
        dist = np.linalg.norm(self.tva - v[None, :], axis=1)
        rel = -dist + w_conf * self.conf
        cand = np.flatnonzero(self.quad == q)
        if cand.size < n:
            cand = np.argsort(dist)[:max(n, cand.size)]
        chosen = []
        while len(chosen) < n and len(chosen) < cand.size:
            sim = self.emb[cand] @ self.emb[chosen].T if chosen else np.zeros((cand.size, 1))
            score = lam * rel[cand] - (1 - lam) * sim.max(1)
            score[np.isin(cand, chosen)] = -np.inf
            if chosen:
                score[np.array([self.artists[c] == self.artists[chosen[-1]] for c in cand])] -= 1e3
            chosen.append(int(cand[np.argmax(score)]))
        return v, q, chosen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--speech", required=True)
    ap.add_argument("--library", required=True)
    ap.add_argument("--models", default=os.environ.get("MELODIC_MODELS", os.path.join(HERE, "..", "..", "shared", "models")))
    ap.add_argument("--va", default=os.path.join(HERE, "..", "configs", "recommend", "default.yaml"))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    a = ap.parse_args()
    m = Models(a.speech, a.library, a.models, a.va)
    app = Flask(__name__)

    @app.get("/api/health")
    def health():
        return jsonify(status="ok", tracks=len(m.ids), speech_labels=m.labels)

    @app.post("/api/recommend")
    def recommend():
        t0 = time.perf_counter()
        try:
            proba, dur = m.classify(request.get_data())
        except Exception as e:  # undecodable upload
            return jsonify(error=f"cannot use the audio: {e}"), 400
        n = int(request.args.get("n", 10))
        v, q, chosen = m.recommend(proba, n)
        top = int(np.argmax(proba))
        return jsonify(emotion=m.labels[top], proba={l: float(p) for l, p in zip(m.labels, proba)},
                       valence=float(v[0]), arousal=float(v[1]), duration_s=dur,
                       tracks=[{"id": m.ids[i], "artist": m.artists[i], "title": m.titles[i],
                                "label": m.classes[m.top[i]], "valence": float(m.tva[i, 0]),
                                "arousal": float(m.tva[i, 1]), "reason": f"Q{q} like the listener"} for i in chosen],
                       ms=1000 * (time.perf_counter() - t0))

    import logging
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    print(f"ref server: http://127.0.0.1:{a.port}/", flush=True)
    if a.torch_threads > 0:
        torch.set_num_threads(a.torch_threads)
    app.run(host="127.0.0.1", port=a.port, threaded=True)


if __name__ == "__main__":
    main()
