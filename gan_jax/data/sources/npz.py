"""Arrays in a NumPy `.npz` file (`--dataset npz:PATH`), in any of three layouts:

- gan_jax's: `x`: uint8 images `[N, H, W, C]` (C 1 or 3) or `[N, H, W]` (grey), and optionally
  `y`: int labels `[N]` in 0..K-1, `x_test`/`y_test` (a test split, same rules) and `class_names`
  `[K]` (strings; without it K = max label + 1). Save one with
  `np.savez(path, x=images, y=labels, x_test=..., y_test=...)`.
- Keras's dataset cache (`~/.keras/datasets/mnist.npz`): `x_train`, `y_train`, `x_test`, `y_test`.
- MedMNIST's: `train_images`, `train_labels`, `val_images`, `val_labels`, `test_images`,
  `test_labels`; labels `[N]` or `[N, 1]`. The `val` split is kept as `val_images`/`val_labels`.
"""

from __future__ import annotations

import pathlib
import zipfile

import numpy as np

from gan_jax.data.spec import Arrays
from gan_jax.errors import DataError

KEYS = ("x", "y", "x_test", "y_test", "class_names")
# each layout's names → gan_jax's (`x_val`/`y_val`: a validation split)
LAYOUTS = {
    "gan_jax": {k: k for k in KEYS},
    "Keras": {"x_train": "x", "y_train": "y", "x_test": "x_test", "y_test": "y_test"},
    "MedMNIST": {
        "train_images": "x",
        "train_labels": "y",
        "val_images": "x_val",
        "val_labels": "y_val",
        "test_images": "x_test",
        "test_labels": "y_test",
    },
}
SPLIT_KEYS = (("train", "x", "y"), ("val", "x_val", "y_val"), ("test", "x_test", "y_test"))


def read(path: pathlib.Path) -> Arrays:
    """`{split}_images` uint8 `[N, H, W, C]` for the splits given (train always; val, test), their
    labels int32 `[N]` (when labelled) and `class_names`; DataError naming the problem and the
    fix."""
    where = f"npz:{path}"
    if not path.is_file():
        raise DataError(
            f"{where} does not exist; pass the path of an .npz file with arrays x (and y)"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = _in_gan_jax_names({k: npz[k] for k in npz.files}, where)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(
            f"{where} is not a readable .npz file ({err}); save it with "
            "np.savez(path, x=images, y=labels)"
        ) from None
    arrays = {"train_images": _images(stored["x"], f"{where} x")}
    for split, x_key, y_key in SPLIT_KEYS[1:]:
        if x_key in stored:
            arrays[f"{split}_images"] = _images(stored[x_key], f"{where} {x_key}")
            if arrays[f"{split}_images"].shape[1:] != arrays["train_images"].shape[1:]:
                raise DataError(
                    f"{where}: {x_key}'s images are {arrays[f'{split}_images'].shape[1:]}, x's "
                    f"{arrays['train_images'].shape[1:]}; give every split one shape"
                )
            if ("y" in stored) != (y_key in stored):
                raise DataError(f"{where}: give y and {y_key} together (or neither) beside {x_key}")
        elif y_key in stored:
            raise DataError(f"{where} has {y_key} without {x_key}; add {x_key} or drop {y_key}")
    if "y" in stored:
        names = stored.get("class_names")
        count = len(names) if names is not None else None
        for split, _, key in SPLIT_KEYS:
            if f"{split}_images" in arrays:
                arrays[f"{split}_labels"] = _labels(
                    stored[key], len(arrays[f"{split}_images"]), count, f"{where} {key}"
                )
        if names is not None:
            arrays["class_names"] = names.astype(str)
    elif "class_names" in stored:
        raise DataError(f"{where} has class_names but no labels y; add y or drop class_names")
    return arrays


def _in_gan_jax_names(stored: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    """The arrays renamed from the layout they are in to gan_jax's keys."""
    for names in LAYOUTS.values():
        train_key = next(k for k, v in names.items() if v == "x")
        if train_key in stored and set(stored) <= set(names):
            return {names[k]: v for k, v in stored.items()}
    layouts = "; ".join(f"{name}: {', '.join(keys)}" for name, keys in LAYOUTS.items())
    raise DataError(
        f"{where} has arrays {sorted(stored)}, which match no layout it reads ({layouts}); "
        "rename them, e.g. np.savez(path, x=images, y=labels)"
    )


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
    if y.ndim == 2 and y.shape[1] == 1:  # MedMNIST's [N, 1]
        y = y[:, 0]
    if y.ndim != 1 or len(y) != count:
        raise DataError(f"{what} has shape {y.shape} for {count} images; give one label per image")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{what} has dtype {y.dtype}; give integer class labels 0..K-1")
    top = num_classes - 1 if num_classes is not None else None
    if len(y) and (y.min() < 0 or (top is not None and y.max() > top)):
        bound = f"0..{top} (class_names has {num_classes})" if top is not None else "0 or more"
        raise DataError(f"{what} has labels {y.min()}..{y.max()} out of range; give labels {bound}")
    return y.astype(np.int32)
