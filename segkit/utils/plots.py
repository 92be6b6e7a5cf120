"""Pictures people read: the confusion matrix, per-class IoU, and training curves (matplotlib, the vis extra)."""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np


def plots_available() -> bool:
    """Whether matplotlib (the vis extra) is installed."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise ValueError('plots need matplotlib: pip install -e ".[vis]"') from e
    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_confusion_matrix(conf: np.ndarray, class_names: Sequence[str], path: str, title: str = "") -> str:
    """Row-normalised confusion matrix in percent (rows: ground truth; each row is the share of that class's
    pixels given to each prediction), names on both axes. Title, colour bar and cell numbers all read %."""
    plt = _pyplot()
    cm = np.asarray(conf, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    percent = 100.0 * np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(class_names)
    size = max(5.0, 0.42 * n + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(percent, cmap="Blues", vmin=0.0, vmax=100.0)
    ax.set_xticks(range(n), labels=class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels=class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    if n <= 30:  # numbers stay legible up to about this many classes
        for i in range(n):
            for j in range(n):
                if percent[i, j] >= 1.0:
                    ax.text(j, i, f"{percent[i, j]:.0f}", ha="center", va="center", fontsize=6,
                            color="white" if percent[i, j] > 50.0 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="% of the ground-truth class's pixels")
    ax.set_title(title or "confusion matrix (row-normalised, %)")
    return _save(fig, path)


def plot_class_iou(per_class: Mapping[str, float | None], path: str, title: str = "") -> str:
    """Horizontal bars of per-class IoU (percent); classes without a value are marked n/a."""
    plt = _pyplot()
    names = list(per_class)
    values = [np.nan if per_class[n] is None else float(per_class[n]) for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(names) + 1.2))
    y = np.arange(len(names))
    ax.barh(y, np.nan_to_num(values), color="tab:blue")
    for yi, v in zip(y, values):
        ax.text((0 if np.isnan(v) else v) + 1, yi, "n/a" if np.isnan(v) else f"{v:.1f}", va="center", fontsize=8)
    ax.set_yticks(y, labels=names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 105)
    ax.set_xlabel("IoU (%)")
    valid = [v for v in values if not np.isnan(v)]
    ax.set_title(title or (f"per-class IoU (mean {np.mean(valid):.2f})" if valid else "per-class IoU"))
    return _save(fig, path)


def plot_training_curves(records: Sequence[Mapping[str, Any]], path: str, title: str = "") -> str:
    """Losses per head, learning rate and evaluation metrics over iterations, from events.jsonl records."""
    plt = _pyplot()

    def series(key: str) -> tuple[list[int], list[float]]:
        pts = [(int(r["iteration"]), float(r[key])) for r in records if key in r]
        return [p[0] for p in pts], [p[1] for p in pts]

    keys = sorted({k for r in records for k in r})
    losses = [k for k in keys if k.startswith("loss")]
    metrics = [k for k in ("mIoU", "mAcc", "aAcc", "top1", "ema_top1") if k in keys]
    panels = [("loss", losses), ("learning rate", ["lr"] if "lr" in keys else []), ("evaluation (%)", metrics)]
    panels = [p for p in panels if p[1]]
    if not panels:
        raise ValueError("no loss, lr or metric values to plot")
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.8 * len(panels)), sharex=True, squeeze=False)
    for ax, (label, names) in zip(axes[:, 0], panels):
        for name in names:
            x, y = series(name)
            ax.plot(x, y, marker="o" if len(x) < 30 else None, markersize=3, label=name)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if len(names) > 1 or label != "learning rate":
            ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel("iteration")
    if title:
        axes[0, 0].set_title(title)
    return _save(fig, path)
