"""PNG outputs: image grids, the real-vs-generated comparison, loss curves."""

from __future__ import annotations

import math
import pathlib
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def image_grid(images: np.ndarray, cols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tiles images `[N, 28, 28, 1]` in [-1, 1] into one uint8 `[H, W]` grid (black padding).

    `cols` defaults to ceil(sqrt(N)); missing cells of the last row stay black.
    """
    images = np.asarray(images, np.float32)
    n, h, w = images.shape[:3]
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad), np.uint8)
    pixels = np.clip((images[..., 0] + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    for i, img in enumerate(pixels):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return grid


def save_grid(path: str | pathlib.Path, images: np.ndarray, cols: int | None = None, scale: int = 3) -> None:
    """Writes `image_grid(images)` as a grayscale PNG, enlarged `scale` times."""
    grid = image_grid(images, cols)
    img = Image.fromarray(grid, mode="L").resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def save_real_vs_generated(path: str | pathlib.Path, real: np.ndarray, generated: np.ndarray) -> None:
    """Two panels side by side: real images and generated ones, both `[N, 28, 28, 1]` in [-1, 1]."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.4))
    for ax, images, title in ((axes[0], real, "real"), (axes[1], generated, "generated")):
        ax.imshow(image_grid(images), cmap="gray", vmin=0, vmax=255)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_loss_curves(path: str | pathlib.Path, rows: Sequence[dict[str, Any]], keys=("d_loss", "g_loss")) -> None:
    """Per-epoch mean losses from metrics.jsonl rows, one line per key, against the epoch."""
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [row["epoch"] for row in rows]
    for key in keys:
        ax.plot(epochs, [row[key] for row in rows], marker="o", label=key)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
