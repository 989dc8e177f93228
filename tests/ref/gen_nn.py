#!/usr/bin/env python3
"""Reference fixtures for the training engine (src/nn), written with PyTorch
1.13 and scikit-learn 1.2.1. Run from the repo root with /usr/bin/python3:

    /usr/bin/python3 tests/ref/gen_nn.py

tests/fixtures/nn_torch.h5 — one group per case (mlp, cnn, cnn_full): the
same network built in PyTorch, its initial parameters in the engine's flat
layout (layer order; dense W (out, in) then b; conv W (cout, k, cin) then b;
batch norm gamma then beta), the training data, the row indices of each of 20
minibatches, the training losses of 20 Adam steps (dropout off, batch norm in
training mode), the final parameters and running statistics (buffers: per
batch-norm layer mean then var) and eval-mode logits on the data afterwards.
Case cnn_full has the paper's real widths (512, 512, 256, 256, 128, dense
512) on length-40 inputs; to keep the fixture small its initial weights come
from an integer hash both sides evaluate exactly (formula_init) and only
every 61st final parameter is stored (sample_stride); it runs one step only
(forward, backward and one Adam update at full width). Each case also records
how far torch float32 lands from torch float64 on it (attributes
f32_vs_f64_*): the Table I stack at full width with batch 8 is ill-conditioned
in float32 (ReLU → batch norm → max-pool near-ties; batch statistics over 8
rows), so torch disagrees with itself there by more than 1e-4.

tests/fixtures/nn_sklearn.h5 — accuracy of MLPClassifier on the digits split
of tests/ref/gen_sklearn_data.py (train_test_split(test_size=0.25,
stratify=y, random_state=0)), with the settings used.
"""
import h5py
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

torch.set_num_threads(1)
OUT_T = "tests/fixtures/nn_torch.h5"
OUT_S = "tests/fixtures/nn_sklearn.h5"
STEPS = 20


def tf_same(L, k, s):
    """TensorFlow 'same': output length and (left, right) padding."""
    out = -(-L // s)
    total = max((out - 1) * s + k - L, 0)
    return out, total // 2, total - total // 2


class Net(torch.nn.Module):
    """A sequential net over channels-last semantics, mirroring src/nn/net.c.
    spec items: ('dense', units), ('conv', filters, k), ('bn',), ('pool', k, s),
    ('act', name), ('flatten',)."""

    def __init__(self, spec, in_len, in_ch):
        super().__init__()
        self.spec = spec
        self.mods = torch.nn.ModuleList()
        L, C = in_len, in_ch
        self.shapes = []
        for item in spec:
            kind = item[0]
            m = torch.nn.Identity()
            if kind == "dense":
                m = torch.nn.Linear(C, item[1])
                C = item[1]
            elif kind == "conv":
                m = torch.nn.Conv1d(C, item[1], item[2])
                C = item[1]
            elif kind == "bn":
                m = torch.nn.BatchNorm1d(C)   # momentum 0.1, eps 1e-5
            elif kind == "pool":
                L = tf_same(L, item[1], item[2])[0]
            elif kind == "flatten":
                C, L = L * C, 1
            self.mods.append(m)
            self.shapes.append((L, C))
        self.in_len, self.in_ch = in_len, in_ch

    def forward(self, x):
        B = x.shape[0]
        x = x.reshape(B, self.in_len, self.in_ch)        # channels-last (B, L, C)
        for item, m in zip(self.spec, self.mods):
            kind = item[0]
            if kind == "dense":
                x = m(x)
            elif kind == "conv":
                k = item[2]
                _, pl, pr = tf_same(x.shape[1], k, 1)
                y = F.pad(x.transpose(1, 2), (pl, pr))
                x = m(y).transpose(1, 2)
            elif kind == "bn":
                x = m(x.transpose(1, 2)).transpose(1, 2)
            elif kind == "pool":
                _, pl, pr = tf_same(x.shape[1], item[1], item[2])
                y = F.pad(x.transpose(1, 2), (pl, pr), value=-float("inf"))
                x = F.max_pool1d(y, item[1], item[2]).transpose(1, 2)
            elif kind == "act":
                x = {"relu": F.relu, "tanh": torch.tanh, "gelu": F.gelu,
                     "hardswish": F.hardswish}[item[1]](x)
            elif kind == "flatten":
                x = x.reshape(B, 1, -1)
        return x.reshape(B, -1)

    def flat_params(self):
        out = []
        for item, m in zip(self.spec, self.mods):
            if item[0] == "dense":
                out += [m.weight.detach().numpy().ravel(), m.bias.detach().numpy().ravel()]
            elif item[0] == "conv":
                out += [m.weight.detach().permute(0, 2, 1).numpy().ravel(), m.bias.detach().numpy().ravel()]
            elif item[0] == "bn":
                out += [m.weight.detach().numpy().ravel(), m.bias.detach().numpy().ravel()]
        return np.concatenate(out).astype(np.float32)

    def flat_buffers(self):
        out = []
        for item, m in zip(self.spec, self.mods):
            if item[0] == "bn":
                out += [m.running_mean.numpy().ravel(), m.running_var.numpy().ravel()]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)

    def formula_init(self):
        """Every dense/conv parameter from an integer hash both sides compute
        exactly: for the i-th value of a tensor of layer li (engine layout),
        h = splitmix64(i + (2 li + is_bias) * 2^32), u = (h >> 11) / 2^53,
        value = (2u - 1) / sqrt(fan_in). Batch norm keeps gamma 1, beta 0."""
        with torch.no_grad():
            for li, (item, m) in enumerate(zip(self.spec, self.mods)):
                if item[0] not in ("dense", "conv"):
                    continue
                scale = 1.0 / np.sqrt(m.weight[0].numel())
                w = hash_uniform(m.weight.numel(), 2 * li) * scale
                b = hash_uniform(m.bias.numel(), 2 * li + 1) * scale
                if item[0] == "conv":
                    cout, cin, k = m.weight.shape
                    m.weight.copy_(torch.from_numpy(w.reshape(cout, k, cin)).permute(0, 2, 1))
                else:
                    m.weight.copy_(torch.from_numpy(w.reshape(m.weight.shape)))
                m.bias.copy_(torch.from_numpy(b))


def hash_uniform(n, stream):
    """splitmix64 finaliser of (i + stream * 2^32), mapped to [-1, 1)."""
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) + np.uint64(stream << 32)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return 2.0 * (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 - 1.0


def train(spec, in_len, in_ch, X, y, batches, opt_kind, lr, wd, class_w, smoothing, seed, formula, dtype):
    """len(batches) steps in the given dtype; returns (net, p0, losses)."""
    torch.manual_seed(seed)
    net = Net(spec, in_len, in_ch)
    if formula:
        net.formula_init()
    p0 = net.flat_params()
    net = net.to(dtype)
    if opt_kind == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=wd)
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=wd)
    w = torch.tensor(class_w, dtype=dtype) if class_w is not None else None
    lossf = torch.nn.CrossEntropyLoss(weight=w, label_smoothing=smoothing)
    Xt, yt = torch.from_numpy(X).to(dtype), torch.from_numpy(y).long()
    losses = []
    net.train()
    for s in range(len(batches)):
        idx = torch.from_numpy(batches[s]).long()
        opt.zero_grad()
        loss = lossf(net(Xt[idx]), yt[idx])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    net.eval()
    with torch.no_grad():
        logits = net(Xt).double().numpy()
    return net, p0, np.array(losses), logits


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def run_case(f, name, spec, in_len, in_ch, n, k, batch, opt_kind, lr, wd, class_w, smoothing, seed,
             formula=False, sample_stride=1, steps=STEPS):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, in_len * in_ch)).astype(np.float32)
    y = (np.arange(n) % k).astype(np.int32)
    rng.shuffle(y)
    batches = np.stack([rng.choice(n, batch, replace=False) for _ in range(steps)]).astype(np.int32)
    args = (spec, in_len, in_ch, X, y, batches, opt_kind, lr, wd, class_w, smoothing, seed, formula)
    net, p0, losses, logits = train(*args, torch.float32)
    net64, _, losses64, logits64 = train(*args, torch.float64)
    p1 = net.flat_params()
    # float32 conditioning of the case: torch float32 against torch float64
    spread = (rel(losses, losses64), rel(p1, net64.flat_params()), rel(logits, logits64))
    logits = logits.astype(np.float32)
    g = f.create_group(name)
    g.attrs["in_len"], g.attrs["in_ch"], g.attrs["n_classes"] = in_len, in_ch, k
    g.attrs["lr"], g.attrs["weight_decay"], g.attrs["smoothing"] = lr, wd, smoothing
    g.attrs["decoupled"] = int(opt_kind == "adamw")
    g.attrs["formula_init"] = int(formula)
    g.attrs["sample_stride"] = sample_stride
    g.attrs["n_params"] = p0.size
    # how far torch float32 is from torch float64 on this case (conditioning)
    g.attrs["f32_vs_f64_loss"], g.attrs["f32_vs_f64_params"], g.attrs["f32_vs_f64_logits"] = spread
    if not formula:
        g.create_dataset("params0", data=p0)
    g.create_dataset("params1", data=p1[::sample_stride])
    g.create_dataset("buffers1", data=net.flat_buffers())
    g.create_dataset("X", data=X)
    g.create_dataset("y", data=y)
    g.create_dataset("batches", data=batches)
    g.create_dataset("losses", data=np.array(losses, np.float64))
    g.create_dataset("logits", data=logits)
    if class_w is not None:
        g.create_dataset("class_weight", data=np.array(class_w, np.float32))
    print("%-9s params %7d  loss %.5f -> %.5f; torch f32 vs f64: loss %.1e params %.1e logits %.1e"
          % ((name, p0.size, losses[0], losses[-1]) + spread))


def table1(filters, kernels, pools, dense, k):
    spec = []
    for f_, k_, p_ in zip(filters, kernels, pools):
        spec += [("conv", f_, k_), ("act", "relu"), ("bn",), ("pool", p_, 2)]
    spec += [("flatten",), ("dense", dense), ("act", "relu"), ("bn",), ("dense", k)]
    return spec


def main():
    with h5py.File(OUT_T, "w") as f:
        f.attrs["generator"] = "tests/ref/gen_nn.py (torch %s)" % torch.__version__
        mlp = [("dense", 16), ("bn",), ("act", "relu"), ("dense", 12), ("act", "gelu"), ("dense", 4)]
        run_case(f, "mlp", mlp, 1, 20, 48, 4, 16, "adam", 1e-2, 1e-3, [1.0, 2.0, 0.5, 1.5], 0.1, 1)
        cnn = table1([16, 16, 8, 8, 8], [5, 5, 5, 3, 3], [5, 5, 5, 5, 3], 16, 4)
        run_case(f, "cnn", cnn, 40, 1, 64, 4, 32, "adamw", 1e-3, 1e-2, None, 0.0, 2)
        full = table1([512, 512, 256, 256, 128], [5, 5, 5, 3, 3], [5, 5, 5, 5, 3], 512, 7)
        run_case(f, "cnn_full", full, 40, 1, 16, 7, 8, "adam", 1e-4, 0.0, None, 0.0, 3,
                 formula=True, sample_stride=61, steps=1)

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X.astype(np.float32), y, test_size=0.25, stratify=y, random_state=0)
    accs = []
    for seed in range(3):
        clf = MLPClassifier(hidden_layer_sizes=(64,), random_state=seed, max_iter=200)
        clf.fit(Xtr, ytr)
        accs.append(clf.score(Xte, yte))
    with h5py.File(OUT_S, "w") as f:
        f.attrs["generator"] = "tests/ref/gen_nn.py (scikit-learn MLPClassifier)"
        f.attrs["settings"] = "hidden_layer_sizes=(64,), defaults otherwise (adam, alpha 1e-4, batch auto, " \
                              "lr 1e-3, max_iter 200, early_stopping False, tol 1e-4, n_iter_no_change 10)"
        f.attrs["split"] = "train_test_split(test_size=0.25, stratify=y, random_state=0)"
        f.create_dataset("digits_accuracy", data=np.array(accs, np.float64))
    print("digits MLPClassifier accuracy (seeds 0..2):", accs)


if __name__ == "__main__":
    main()
