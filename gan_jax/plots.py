"""PNG outputs: image grids, the real-vs-generated comparison, loss curves."""

from __future__ import annotations

import math
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

# Figures without pyplot: importing gan_jax leaves a notebook's backend alone.
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image


def image_grid(images: np.ndarray, cols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tiles images `[N, h, w, C]` in [-1, 1] into one uint8 grid (black padding): `[H, W]` for
    grayscale (C = 1), `[H, W, 3]` for RGB (C = 3).

    `cols` defaults to ceil(sqrt(N)); missing cells of the last row stay black.
    """
    images = np.asarray(images, np.float32)
    n, h, w, channels = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, channels), np.uint8)
    pixels = np.clip((images + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    for i, img in enumerate(pixels):
        r, c = divmod(i, cols)
        grid[
            pad + r * (h + pad) : pad + r * (h + pad) + h,
            pad + c * (w + pad) : pad + c * (w + pad) + w,
        ] = img
    return grid[..., 0] if channels == 1 else grid


def save_grid(
    path: str | pathlib.Path, images: np.ndarray, cols: int | None = None, scale: int = 3
) -> None:
    """Writes `image_grid(images)` as a PNG (grayscale or RGB), enlarged `scale` times."""
    grid = image_grid(images, cols)
    img = Image.fromarray(grid).resize(
        (grid.shape[1] * scale, grid.shape[0] * scale), Image.Resampling.NEAREST
    )
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def save_real_vs_generated(
    path: str | pathlib.Path, real: np.ndarray, generated: np.ndarray
) -> None:
    """Two panels side by side: real images and generated ones, both `[N, h, w, C]` in [-1, 1]."""
    fig = Figure(figsize=(8, 4.4))
    axes = fig.subplots(1, 2)
    for ax, images, title in ((axes[0], real, "real"), (axes[1], generated, "generated")):
        ax.imshow(image_grid(images), cmap="gray", vmin=0, vmax=255)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def save_loss_curves(
    path: str | pathlib.Path,
    rows: Sequence[dict[str, Any]],
    keys=("d_loss", "g_loss"),
    windows: Sequence[dict[str, Any]] = (),
) -> None:
    """Loss curves of one run (one member): with `windows` (losses.jsonl rows: `step`, `steps` and
    each key's mean over those steps), a line per key against the step, and the per-epoch means
    of `rows` (metrics.jsonl rows: `epoch`, `step`, keys) as dots at each epoch's last step;
    without, the per-epoch means against the epoch (workdirs from before losses.jsonl)."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    if windows:
        for key in keys:
            (line,) = ax.plot(
                [row["step"] for row in windows],
                [row[key] for row in windows],
                linewidth=1,
                label=f"{key} (mean of {max(row['steps'] for row in windows)} steps)",
            )
            ax.plot(
                [row["step"] for row in rows],
                [row[key] for row in rows],
                "o",
                color=line.get_color(),
                label=f"{key} (epoch mean)",
            )
        ax.set_xlabel("step")
    else:
        for key in keys:
            ax.plot(
                [row["epoch"] for row in rows], [row[key] for row in rows], marker="o", label=key
            )
        ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("mean loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def save_accuracy_bars(
    path: str | pathlib.Path, stats: dict[tuple[str, int], dict[str, float]]
) -> None:
    """The seed's chart: test accuracy (%) vs number of labels, one bar per method, std error bars.

    `stats`: `(method, labels) → {"mean", "std", "n"}` (see `gan_jax.sweep.summarize`).
    """
    methods = sorted({m for m, _ in stats}, key=lambda m: (m != "sgan", m))
    label_counts = sorted({n for _, n in stats})
    width = 0.8 / len(methods)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    x = np.arange(len(label_counts))
    for i, method in enumerate(methods):
        cells = [stats.get((method, n), {"mean": np.nan, "std": 0.0}) for n in label_counts]
        bars = ax.bar(
            x + (i - (len(methods) - 1) / 2) * width,
            [c["mean"] for c in cells],
            width,
            yerr=[c["std"] for c in cells],
            capsize=4,
            label=method.upper() if method == "sgan" else method,
        )
        ax.bar_label(bars, labels=[f"{c['mean']:.1f}" for c in cells], padding=2, fontsize=8)
    ax.set_xticks(x, [str(n) for n in label_counts])
    ax.set_xlabel("number of labeled training images")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)  # from 0, so bar lengths compare as the accuracies do
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def save_confusion(
    path: str | pathlib.Path, confusion: Sequence[Sequence[int]], class_names: Sequence[str]
) -> None:
    """The confusion matrix `[K, K]` (rows: true class, columns: predicted) as a heat map with
    each cell's count, classes named."""
    matrix = np.asarray(confusion)
    size = max(4.0, 0.5 * len(class_names) + 2)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    shown = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(shown, ax=ax, fraction=0.046)
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for (row, col), count in np.ndenumerate(matrix):
        dark = count > matrix.max() / 2
        ax.text(
            col,
            row,
            str(count),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if dark else "black",
        )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def save_samples_over_training(
    path: str | pathlib.Path, sample_dirs: dict[Any, pathlib.Path], columns: int = 6
) -> None:
    """One row per run (e.g. per label count) of its per-epoch sample grids, up to `columns` epochs
    evenly spaced from the first to the last, read from `samples/epoch_NNNN.png`."""
    runs = {name: sorted(pathlib.Path(d).glob("epoch_*.png")) for name, d in sample_dirs.items()}
    runs = {name: files for name, files in runs.items() if files}
    if not runs:
        return
    cols = min(columns, max(len(f) for f in runs.values()))
    fig = Figure(figsize=(2 * cols, 2.2 * len(runs)))
    axes = fig.subplots(len(runs), cols, squeeze=False)
    for r, (name, files) in enumerate(runs.items()):
        picks = sorted({files[round(i * (len(files) - 1) / max(cols - 1, 1))] for i in range(cols)})
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(picks):
                ax.imshow(np.asarray(Image.open(picks[c])), cmap="gray", vmin=0, vmax=255)
                ax.set_title(f"{name} labels, epoch {int(picks[c].stem.split('_')[1])}", fontsize=8)
    fig.suptitle("SGAN generator samples over training (fixed noise, first data seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
