#!/usr/bin/python3
"""Draw the paper's figures from a run's results.h5 (run with /usr/bin/python3).

usage: scripts/plot_results.py DIR [--model NAME]

Writes into DIR: fig_labels.png (label distribution, paper Figs. 2-3),
fig_tsne.png (Fig. 4), fig_roc_<model>.png (Fig. 5), fig_pr_<model>.png
(Fig. 6), fig_training_<model>.png (Fig. 7, neural models), and
fig_confusion_<model>.png. Without --model, curves are drawn for every model.
"""
import os
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def dec(x):
    return x.decode() if isinstance(x, bytes) else str(x)


WRITTEN = []


def save(fig, path):
    tmp = path + ".tmp.png"
    fig.tight_layout()
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    WRITTEN.append(os.path.basename(path))


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) >= 2 else 2
    d = sys.argv[1]
    only = sys.argv[sys.argv.index("--model") + 1] if "--model" in sys.argv else None
    path = os.path.join(d, "results.h5")
    if not os.path.exists(path):
        print(f"plot_results: {path}: no such file (run 'melodic run' first)", file=sys.stderr)
        return 1
    f = h5py.File(path, "r")
    if dec(f.attrs.get("format", "")) != "melodic-results":
        print(f"plot_results: {path}: not a melodic results file", file=sys.stderr)
        return 1
    name = dec(f.attrs.get("name", os.path.basename(d)))
    labels = [dec(x) for x in f["dataset/label_names"][:]]
    counts = f["dataset/counts"][:]

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(labels, counts, color="#4c72b0")
    ax.set_ylabel("clips")
    ax.set_title(f"Label distribution — {name}")
    for i, c in enumerate(counts):
        ax.text(i, c, str(int(c)), ha="center", va="bottom", fontsize=8)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    save(fig, os.path.join(d, "fig_labels.png"))

    if "tsne" in f:
        xy = f["tsne/xy"][:]
        lab = f["tsne/labels"][:]
        fig, ax = plt.subplots(figsize=(6, 5))
        for c, l in enumerate(labels):
            m = lab == c
            ax.scatter(xy[m, 0], xy[m, 1], s=6, label=l, alpha=0.7)
        kl = f["tsne"].attrs.get("kl_divergence", float("nan"))
        ax.set_title(f"t-SNE of the features (KL {kl:.3f})")
        ax.legend(markerscale=3, fontsize=8)
        save(fig, os.path.join(d, "fig_tsne.png"))

    for model in f["models"]:
        if only and model != only:
            continue
        g = f["models"][model]
        if "roc" in g:
            fig, ax = plt.subplots(figsize=(5.5, 5))
            for l in labels:
                if l not in g["roc"]:
                    continue
                r = g["roc"][l]
                ax.plot(r["fpr"][:], r["tpr"][:], label=f"{l} (AUC {r.attrs['auc']:.2f})")
            ax.plot([0, 1], [0, 1], "k--", lw=0.8)
            ax.set_xlabel("false positive rate")
            ax.set_ylabel("true positive rate")
            ax.set_title(f"ROC, one vs rest — {model}")
            ax.legend(fontsize=8)
            save(fig, os.path.join(d, f"fig_roc_{model}.png"))
        if "pr" in g:
            fig, ax = plt.subplots(figsize=(5.5, 5))
            for l in labels:
                if l not in g["pr"]:
                    continue
                r = g["pr"][l]
                ax.step(r["recall"][:], r["precision"][:], where="post", label=f"{l} (AP {r.attrs['ap']:.2f})")
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
            ax.set_title(f"Precision-recall — {model}")
            ax.legend(fontsize=8)
            save(fig, os.path.join(d, f"fig_pr_{model}.png"))
        if "metrics/confusion" in g:
            cm = g["metrics/confusion"][:]
            fig, ax = plt.subplots(figsize=(5.5, 5))
            ax.imshow(cm, cmap="Blues")
            ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
            ax.set_yticks(range(len(labels)), labels)
            for i in range(cm.shape[0]):
                for j in range(cm.shape[1]):
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if cm[i, j] > cm.max() / 2 else "black")
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(f"Confusion (first repeat, pooled folds) — {model}")
            save(fig, os.path.join(d, f"fig_confusion_{model}.png"))
        if "history" in g:
            h = g["history"]
            rounds = sorted(h, key=lambda s: int(s))
            # one panel per quantity a model records (logreg records no accuracy: no empty panel)
            panels = [(("train_loss", "val_loss"), "loss"), (("train_acc", "val_acc"), "accuracy")]
            panels = [(keys, yl) for keys, yl in panels
                      if any(key in h[k] and len(h[k][key]) for k in rounds for key in keys)]
            if panels:
                fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
                for (keys, ylabel), ax in zip(panels, axes[0]):
                    for k in rounds:
                        for key, style in zip(keys, ("-", "--")):
                            if key in h[k] and len(h[k][key]):
                                ax.plot(h[k][key][:], style, lw=1,
                                        label=f"{key} ({len(rounds)} rounds)" if k == rounds[0] else None)
                    ax.set_xlabel("epoch" if "mlp" in model or "cnn" in model else "iteration")
                    ax.set_ylabel(ylabel)
                    ax.legend(fontsize=8)
                fig.suptitle(f"Training curves — {model}")
                save(fig, os.path.join(d, f"fig_training_{model}.png"))
    print(f"plot_results: {d}: {len(WRITTEN)} figures ({', '.join(WRITTEN)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
