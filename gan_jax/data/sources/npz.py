"""Arrays in a NumPy `.npz` file (`--dataset npz:PATH`).

The file holds `x`: uint8 images `[N, H, W, C]` (C 1 or 3) or `[N, H, W]` (grey), and optionally
`y`: int labels `[N]` in 0..K-1, `x_test`/`y_test` (a test split, same rules) and `class_names`
`[K]` (strings; without it K = max label + 1). Save one with
`np.savez(path, x=images, y=labels, x_test=..., y_test=...)`.
"""

from __future__ import annotations

import pathlib
import zipfile

import numpy as np

from gan_jax.data.spec import Arrays
from gan_jax.errors import DataError

KEYS = ("x", "y", "x_test", "y_test", "class_names")


def read(path: pathlib.Path) -> Arrays:
    """`train_images`, `test_images` (when `x_test` is given) uint8 `[N, H, W, C]`, their labels
    int32 `[N]` (when `y` is given) and `class_names`; DataError naming the problem and the fix."""
    where = f"npz:{path}"
    if not path.is_file():
        raise DataError(
            f"{where} does not exist; pass the path of an .npz file with arrays x (and y)"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(
            f"{where} is not a readable .npz file ({err}); save it with "
            "np.savez(path, x=images, y=labels)"
        ) from None
    unknown = sorted(set(stored) - set(KEYS))
    if "x" not in stored or unknown:
        raise DataError(
            f"{where} has arrays {sorted(stored)}; it needs x (images [N, H, W, C] uint8) and "
            f"may have only {', '.join(KEYS[1:])}"
        )
    if ("y" in stored) != ("y_test" in stored) and "x_test" in stored:
        raise DataError(f"{where}: give y and y_test together (or neither) beside x_test")
    arrays = {"train_images": _images(stored["x"], f"{where} x")}
    if "x_test" in stored:
        arrays["test_images"] = _images(stored["x_test"], f"{where} x_test")
        if arrays["test_images"].shape[1:] != arrays["train_images"].shape[1:]:
            raise DataError(
                f"{where}: x_test's images are {arrays['test_images'].shape[1:]}, x's "
                f"{arrays['train_images'].shape[1:]}; give both splits one shape"
            )
    elif "y_test" in stored:
        raise DataError(f"{where} has y_test without x_test; add x_test or drop y_test")
    if "y" in stored:
        names = stored.get("class_names")
        count = len(names) if names is not None else None
        for split, key in (("train", "y"), ("test", "y_test")):
            if f"{split}_images" in arrays:
                arrays[f"{split}_labels"] = _labels(
                    stored[key], len(arrays[f"{split}_images"]), count, f"{where} {key}"
                )
        if names is not None:
            arrays["class_names"] = names.astype(str)
    elif "class_names" in stored:
        raise DataError(f"{where} has class_names but no labels y; add y or drop class_names")
    return arrays


def _images(x: np.ndarray, what: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or len(x) == 0:
        raise DataError(
            f"{what} has shape {x.shape}; give images [N, H, W, C] with C 1 or 3 (or [N, H, W]), "
            "N >= 1"
        )
    if x.dtype != np.uint8:
        raise DataError(f"{what} has dtype {x.dtype}; give uint8 pixels 0..255 (.astype(np.uint8))")
    return x


def _labels(y: np.ndarray, count: int, num_classes: int | None, what: str) -> np.ndarray:
    if y.ndim != 1 or len(y) != count:
        raise DataError(f"{what} has shape {y.shape} for {count} images; give one label per image")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{what} has dtype {y.dtype}; give integer class labels 0..K-1")
    top = num_classes - 1 if num_classes is not None else None
    if len(y) and (y.min() < 0 or (top is not None and y.max() > top)):
        bound = f"0..{top} (class_names has {num_classes})" if top is not None else "0 or more"
        raise DataError(f"{what} has labels {y.min()}..{y.max()} out of range; give labels {bound}")
    return y.astype(np.int32)
