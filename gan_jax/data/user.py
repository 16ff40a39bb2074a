"""The user's own images: datasets named by where they are, `folder:PATH`, `npz:PATH` and
`tfds:NAME[:SPLIT]`, read, shaped and cached.

A folder is decoded once per content: its arrays (after `--image-size`/`--channels`) are cached as
`<cache_dir>/datasets/folder_<key>.npz`, the key a SHA-256 of every file's path and bytes and of
the shape asked for, so a changed folder is read again and an unchanged one is not. An `.npz` is
cached only when it is reshaped; TFDS keeps its own files. The spec (shape, classes, class
counts) comes from the arrays.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
from typing import Any

import numpy as np

from gan_jax.data.download import cache_dir, cache_lock, cache_npz, read_verified_npz, sha256_of
from gan_jax.data.shaping import shape_image, shape_images, shaped_shape
from gan_jax.data.sources import folder, npz
from gan_jax.data.sources import tfds as tfds_source
from gan_jax.data.spec import SPLITS, Arrays, DatasetSpec
from gan_jax.errors import ConfigError, DataError

log = logging.getLogger("gan_jax")

KINDS = ("folder", "npz", "tfds")
SPELLINGS = "folder:PATH, npz:PATH or tfds:NAME[:SPLIT]"
TEST_FRACTION: float | None = None  # share held out as a test split where there is none (None: no)
HOLD_OUT_SEED = 0  # the held-out images are a function of the data and the fraction alone
# (name, size, channels) → the arrays as read; then + test fraction, + val fraction → the arrays
# with those splits held out; + "spec" → their spec
_READ: dict[tuple, Any] = {}


def is_user_dataset(name: str) -> bool:
    """Whether `name` is spelled `kind:...` for one of `KINDS`."""
    return isinstance(name, str) and name.split(":", 1)[0] in KINDS and ":" in name


def check_name(name: str) -> None:
    """ConfigError unless `name` is a well-formed `folder:PATH`, `npz:PATH` or
    `tfds:NAME[:SPLIT]` (the path is checked when the data is read)."""
    kind, _, rest = name.partition(":")
    if not rest or (kind == "tfds" and not rest.split(":")[0]):
        raise ConfigError(f"dataset {name!r} names no {kind} source; pass {SPELLINGS}")


def read(
    name: str,
    image_size: int | None,
    channels: int | None,
    data_dir: str | os.PathLike | None = None,
    test_fraction: float | None = TEST_FRACTION,
    val_fraction: float | None = None,
) -> tuple[DatasetSpec, Arrays]:
    """The spec and arrays (`{split}_images` uint8 `[N, H, W, C]`, `{split}_labels` int32 `[N]`
    where labeled) of user dataset `name`, shaped as asked; a labelled one without a test (or
    validation) split is given one of `test_fraction` (`val_fraction`) of its training images
    (`hold_out`; None: none); memoized per process.

    Raises:
      DataError: the data is missing or malformed (the message names the file and the fix).
    """
    key: tuple = (name, image_size, channels)
    if key not in _READ:
        kind, _, rest = name.partition(":")
        reader = {"folder": _folder, "npz": _npz, "tfds": _tfds}[kind]
        _READ[key] = reader(rest, image_size, channels, data_dir)
    for split, fraction in (("test", test_fraction), ("val", val_fraction)):
        arrays, key = _READ[key], (*key, fraction)  # each hold-out made once, on the one before
        if key not in _READ:
            if fraction and f"{split}_images" not in arrays and "train_labels" in arrays:
                arrays = hold_out(arrays, split, fraction, name)
            _READ[key] = arrays
    if (*key, "spec") not in _READ:
        _READ[(*key, "spec")] = spec_of(name, _READ[key])
    return _READ[(*key, "spec")], _READ[key]


def hold_out(arrays: Arrays, split: str, fraction: float, name: str) -> Arrays:
    """`arrays` with `round(fraction · n_k)` images of each class k (at least one where the class
    has two or more) moved from the training split to a new `split` ('test' or 'val'), chosen by
    a fixed seed per split: the same data and fraction always give the same split."""
    labels = arrays["train_labels"]
    rng = np.random.default_rng([HOLD_OUT_SEED, SPLITS.index(split) if split in SPLITS else 2])
    held = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        count = min(max(round(fraction * len(members)), 1), len(members) - 1)
        held.append(rng.permutation(members)[:count])
    test = np.sort(np.concatenate(held))
    if len(test) == 0:
        raise DataError(
            f"{name} has too few images per class to hold out a {split} split; give one (a "
            f"{split}/ folder or {split} arrays) or add images"
        )
    train = np.setdiff1d(np.arange(len(labels)), test)
    log.info(
        "%s has no %s split: held out %d of its %d labelled training images as one "
        "(--%s-fraction %g, stratified by class); training on the other %d",
        name,
        split,
        len(test),
        len(labels),
        split,
        fraction,
        len(train),
    )
    parts = {
        "train_images": arrays["train_images"][train],
        "train_labels": labels[train],
        f"{split}_images": arrays["train_images"][test],
        f"{split}_labels": labels[test],
    }
    return {**arrays, **parts}


def spec_of(name: str, arrays: Arrays) -> DatasetSpec:
    """The spec a user dataset's arrays describe; DataError for test labels beyond the training
    classes."""
    names = tuple(str(n) for n in arrays.get("class_names", ()))
    labeled = "train_labels" in arrays
    num_classes = (len(names) or int(arrays["train_labels"].max()) + 1) if labeled else 0
    counts: dict[str, tuple[int, ...]] = {}
    for split in SPLITS:
        if f"{split}_images" not in arrays:
            continue
        counts[split] = ()
        if labeled:
            labels = arrays[f"{split}_labels"]
            if len(labels) and labels.max() >= num_classes:
                raise DataError(
                    f"{name}: {split} labels reach {labels.max()} but the training split has "
                    f"classes 0..{num_classes - 1}; give every split the same classes"
                )
            counts[split] = tuple(np.bincount(labels, minlength=num_classes).tolist())
    shape = tuple(int(d) for d in arrays["train_images"].shape[1:])
    return DatasetSpec(
        name, name, (shape[0], shape[1], shape[2]), num_classes, counts, None, "", names
    )


def _folder(path: str, image_size, channels, data_dir) -> Arrays:
    root = pathlib.Path(path).expanduser()
    folders = folder.split_folders(root).values()
    files = [f for d in folders for f in folder.image_files(d)[0]]
    label_files = [d / folder.LABELS_CSV for d in folders if (d / folder.LABELS_CSV).is_file()]
    digest = folder.content_key(files + label_files, root)
    cached = cache_path("folder", digest, image_size, channels)
    with cache_lock(cached):
        arrays = read_verified_npz(cached, f"decoded {root}")
        if arrays is None:
            arrays = folder.read(root, image_size, channels)
            cache_npz(cached, arrays)
            log.info(
                "read %d images of %s once; later runs read the cache %s", len(files), root, cached
            )
    return arrays


def _npz(path: str, image_size, channels, data_dir) -> Arrays:
    file = pathlib.Path(path).expanduser()
    arrays = npz.read(file)
    shapes = [arrays[k].shape[1:] for k in arrays if k.endswith("_images")]
    if all(shaped_shape(shape, image_size, channels) == shape for shape in shapes):
        return arrays
    cached = cache_path("npz", sha256_of(file), image_size, channels)
    with cache_lock(cached):
        shaped = read_verified_npz(cached, f"resized {file}")
        if shaped is None:
            shaped = {
                k: shape_images(v, image_size, channels) if k.endswith("_images") else v
                for k, v in arrays.items()
            }
            cache_npz(cached, shaped)
    return shaped


def _tfds(rest: str, image_size, channels, data_dir) -> Arrays:
    name, _, split = rest.partition(":")
    splits = {"train": split or "train"}
    if splits["train"] != "test":
        splits["test"] = "test"
    arrays: Arrays = {}
    for ours, theirs in splits.items():
        try:
            found: dict[str, Any] = tfds_source.read_named(name, theirs, data_dir)
        except DataError:
            if ours == "test":  # a dataset without a test split
                continue
            raise
        images = found["images"]
        if image_size is not None or channels is not None:
            images = [shape_image(image, image_size, channels) for image in images]
        if len({image.shape for image in images}) > 1:
            raise DataError(
                f"tfds:{name}:{theirs} has images of several sizes; pass --image-size S "
                "(e.g. 32 or 64) to crop and resize them all"
            )
        arrays[f"{ours}_images"] = np.stack(images)
        if found["labels"] is not None:
            arrays[f"{ours}_labels"] = found["labels"]
            arrays["class_names"] = np.asarray(found["class_names"])
    return arrays


def cache_path(kind: str, digest: str, image_size, channels) -> pathlib.Path:
    """Where arrays of content `digest` shaped by `image_size`/`channels` are cached."""
    key = hashlib.sha256(f"{digest}/{image_size}/{channels}".encode()).hexdigest()[:24]
    return cache_dir() / "datasets" / f"{kind}_{key}.npz"
