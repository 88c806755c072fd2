"""The chapter's figures with matplotlib (Agg: no display needed, same pixels on every run).

Each function returns a Figure of a fixed size (FIGURE_SIZES, inches) so the PNG is figsize x dpi pixels.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fmnist.core.dataset import CLASS_NAMES  # noqa: E402

FIGURE_SIZES = {
    "samples": (12.0, 1.9),
    "curves": (11.0, 4.0),
    "optimizers": (8.0, 5.0),
    "accuracy": (9.0, 7.0),
    "confusion": (8.5, 7.5),
}
TRAIN_STYLE = {"color": "tab:blue", "marker": "o", "markersize": 3}
VAL_STYLE = {"color": "tab:orange", "marker": "s", "markersize": 3}


def _figure(kind: str, **kwargs) -> tuple[Figure, np.ndarray | plt.Axes]:
    return plt.subplots(figsize=FIGURE_SIZES[kind], layout="constrained", **kwargs)


def save(figure: Figure, path: Path, dpi: int) -> None:
    # No metadata timestamp is written for PNG, so equal figures give equal bytes.
    figure.savefig(path, dpi=dpi, format="png")
    plt.close(figure)


def sample_images(images: np.ndarray, labels: np.ndarray) -> Figure:
    """The chapter's first figure: the first training images in a row, each titled with its class."""
    figure, axes = _figure("samples", ncols=len(images), squeeze=False)
    for ax, image, label in zip(axes[0], images, labels):
        ax.imshow(image, cmap="gray_r")  # the chapter's colour map: dark garment on white
        ax.set_title(CLASS_NAMES[int(label)], fontsize=9)
        ax.axis("off")
    figure.suptitle(f"The first {len(images)} training images and their labels")
    return figure


def _integer_epochs(ax: plt.Axes, history: pd.DataFrame) -> None:
    ax.set_xlabel("epoch")
    ax.set_xticks(history["epoch"] if len(history) <= 20 else history["epoch"][::2])
    ax.grid(alpha=0.3)


def training_curves(name: str, description: str, history: pd.DataFrame, *, best_epoch: int | None,
                    stopped_epoch: int | None, monitor: str) -> Figure:
    """Loss and accuracy per epoch, training vs validation, with the best and the stopped epoch marked."""
    figure, (loss_ax, accuracy_ax) = _figure("curves", ncols=2)
    for ax, metric in ((loss_ax, "loss"), (accuracy_ax, "accuracy")):
        ax.plot(history["epoch"], history[metric], label=f"training {metric}", **TRAIN_STYLE)
        ax.plot(history["epoch"], history[f"val_{metric}"], label=f"validation {metric}", **VAL_STYLE)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="tab:green", linestyle="--", linewidth=1,
                       label=f"best epoch {best_epoch} (by {monitor})")
        if stopped_epoch is not None:
            ax.axvline(stopped_epoch, color="tab:red", linestyle=":", linewidth=1.5,
                       label=f"early stopping at epoch {stopped_epoch}")
        ax.set_ylabel(metric)
        _integer_epochs(ax, history)
        ax.legend(fontsize=8)
    loss_ax.set_title("Loss")
    accuracy_ax.set_title("Accuracy")
    figure.suptitle(f"{name}: {description}")
    return figure


def optimizer_comparison(histories: dict[str, pd.DataFrame], labels: dict[str, str]) -> Figure:
    """Training loss per epoch of several variants on one chart (the chapter's optimizer comparison)."""
    figure, ax = _figure("optimizers")
    markers = "osD^v<>ph*"
    for i, (name, history) in enumerate(histories.items()):
        ax.plot(history["epoch"], history["loss"], marker=markers[i % len(markers)], markersize=4, label=labels[name])
    _integer_epochs(ax, next(iter(histories.values())))
    ax.set_ylabel("training loss")
    ax.set_title("Optimizers: training loss per epoch (same model, same data, same seed)")
    ax.legend(fontsize=8)
    return figure


def accuracy_comparison(table: pd.DataFrame, seed: int, folds: int) -> Figure:
    """Mean validation and test accuracy across seeds of every row of results.comparison_table (best at the
    top), with ±1 σ error bars, the chapter seed's own value, and the chapter's reported value where it
    reports one."""
    figure, ax = _figure("accuracy")
    rows = table.iloc[::-1].reset_index(drop=True)  # barh draws bottom-up: best last = on top
    positions = np.arange(len(rows))
    height = 0.38
    error_style = {"ecolor": "black", "elinewidth": 1, "capsize": 2}
    for split, offset, color in (("val", height / 2, "tab:orange"), ("test", -height / 2, "tab:blue")):
        std = rows[f"{split}_accuracy_std"].astype(float).fillna(0.0)
        ax.barh(positions + offset, rows[f"{split}_accuracy_mean"], height, xerr=std, error_kw=error_style,
                color=color, label=f"{'validation' if split == 'val' else 'test'} accuracy, mean ± σ over seeds")
        ax.scatter(rows[f"{split}_accuracy"], positions + offset, marker="o", facecolors="white", edgecolors="black",
                   s=16, linewidths=0.8, zorder=3,
                   label=f"seed {seed} (the chapter's seed)" if split == "val" else None)
    marked = rows[rows["chapter"].notna()]
    values = pd.concat([rows["val_accuracy_min"], rows["test_accuracy_min"], rows["val_accuracy_max"],
                        rows["test_accuracy_max"], marked["chapter"]])
    left = np.floor((values.min() - 0.01) * 50) / 50
    ax.set_xlim(left, min(1.0, values.max() + 0.01))
    for position, (val, test) in enumerate(zip(rows["val_accuracy_mean"], rows["test_accuracy_mean"])):
        # At the bars' start, where the chapter's marker (always above the axis start) never covers them.
        for value, offset in ((val, height / 2), (test, -height / 2)):
            ax.text(left + 0.001, position + offset, f"{value:.4f}", va="center", fontsize=7, color="white")
    ax.set_yticks(positions, rows["variant"])
    if len(marked):
        offsets = np.where(marked["chapter_metric"] == "test_accuracy", -height / 2, height / 2)
        # The baseline's chapter number is a CV score: drawn on its validation bar, labelled in the legend.
        ax.scatter(marked["chapter"], marked.index + offsets, marker="D", color="black", s=28, zorder=4,
                   label=f"the chapter's value (baseline: {folds}-fold CV)")
    seeds = sorted({int(n) for n, name in zip(rows["seeds"], rows["variant"]) if name != "baseline"})
    ax.set_xlabel("accuracy (axis does not start at 0)")
    ax.set_title(f"Every variant ({' / '.join(map(str, seeds))} seeds) and the logistic baseline (one fit), "
                 "by mean validation accuracy", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return figure


def confusion_heatmap(counts: np.ndarray, title: str) -> Figure:
    figure, ax = _figure("confusion")
    image = ax.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=ax, shrink=0.8, label="test images")
    ticks = np.arange(len(CLASS_NAMES))
    ax.set_xticks(ticks, CLASS_NAMES, rotation=45, ha="right")
    ax.set_yticks(ticks, CLASS_NAMES)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("actual class")
    threshold = counts.max() / 2
    for (row, column), count in np.ndenumerate(counts):
        ax.text(column, row, str(count), ha="center", va="center", fontsize=8,
                color="white" if count > threshold else "black")
    ax.set_title(title)
    return figure
