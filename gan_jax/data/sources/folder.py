"""A folder of PNG/JPEG images (`--dataset folder:PATH`), read with Pillow.

Layouts (torchvision's and TFDS's `ImageFolder` convention):
- `PATH/<class>/*.png`: one subfolder per class gives labels, classes in sorted name order;
- `PATH/*.png`: a flat folder is unlabeled, unless `PATH/labels.csv` (`filename,label` rows,
  the usual form of medical sets) labels every image: labels are class names, or integers
  0..K-1 (classes in sorted name order, or by number);
- `PATH/train/...` and `PATH/test/...`, each laid out as above: a training and a test split
  (otherwise there is a training split only).
Inside a class folder images may sit in further subfolders. Hidden files (`.DS_Store`) are
skipped; any other file that is not a PNG or JPEG image is an error, as are an empty folder, an
unreadable or truncated image, mixed sizes without `--image-size`, and mixed grey and colour
without `--channels`. Each error names the file and the fix.
"""

from __future__ import annotations

import csv
import hashlib
import pathlib
from collections import Counter

import numpy as np
from PIL import Image

from gan_jax.data.shaping import to_array
from gan_jax.data.spec import Arrays
from gan_jax.errors import DataError

SUFFIXES = (".png", ".jpg", ".jpeg")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
READER_VERSION = "1"  # part of the cache key: bump when decoding changes
LABELS_CSV = "labels.csv"


def split_folders(root: pathlib.Path) -> dict[str, pathlib.Path]:
    """`{"train": PATH/train, "test": PATH/test}` where PATH has a train subfolder (test optional),
    else `{"train": PATH}`; DataError for a path that is missing or not a folder."""
    if not root.exists():
        raise DataError(f"folder:{root} does not exist; pass an existing folder of PNG/JPEG images")
    if not root.is_dir():
        raise DataError(f"folder:{root} is not a folder; pass a folder, or npz:{root} for arrays")
    if (root / "train").is_dir():
        folders = {"train": root / "train"}
        if (root / "test").is_dir():
            folders["test"] = root / "test"
        return folders
    return {"train": root}


def image_files(folder: pathlib.Path) -> tuple[list[pathlib.Path], list[str] | None]:
    """The images of one split folder in a fixed order, and its class names (None: unlabeled).

    Returns:
      (files, classes): with classes, `files` are grouped by class in `classes` order.
    Raises:
      DataError: no images, an empty class folder, a non-image file, images beside class
        folders, or a labels.csv that does not label exactly the folder's images.
    """
    files, classes, _ = labeled_files(folder)
    return files, classes


def labeled_files(
    folder: pathlib.Path,
) -> tuple[list[pathlib.Path], list[str] | None, np.ndarray | None]:
    """`image_files` with each file's label, int32 `[N]` (None: unlabeled)."""
    entries = _visible(folder.iterdir())
    subfolders = [e for e in entries if e.is_dir()]
    files = [e for e in entries if not e.is_dir() and e.name != LABELS_CSV]
    for file in files:
        _require_image_name(file)
    if subfolders and files:
        raise DataError(
            f"{folder} mixes images ({files[0].name}) with class subfolders "
            f"({subfolders[0].name}); move the images into a class subfolder"
        )
    if not subfolders:
        if not files:
            raise DataError(
                f"{folder} has no PNG or JPEG images; add images (one subfolder per class for "
                "labels)"
            )
        if (folder / LABELS_CSV).is_file():
            return _csv_labeled(folder, files)
        return files, None, None
    grouped: list[pathlib.Path] = []
    labels: list[int] = []
    for k, sub in enumerate(subfolders):
        inside = _visible(p for p in sub.rglob("*") if not p.is_dir())
        if not inside:
            raise DataError(f"class folder {sub} has no images; add images to it or remove it")
        for file in inside:
            _require_image_name(file)
        grouped += inside
        labels += [k] * len(inside)
    return grouped, [sub.name for sub in subfolders], np.asarray(labels, np.int32)


def _csv_labeled(
    folder: pathlib.Path, files: list[pathlib.Path]
) -> tuple[list[pathlib.Path], list[str], np.ndarray]:
    """A flat folder's images labelled by its labels.csv, grouped by class."""
    where = folder / LABELS_CSV
    with where.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        if not {"filename", "label"} <= set(reader.fieldnames or ()):
            raise DataError(
                f"{where} has columns {reader.fieldnames}; give a header row filename,label"
            )
        pairs = [(row["filename"].strip(), row["label"].strip()) for row in reader]
    rows = dict(pairs)
    if len(rows) != len(pairs):
        twice = next(n for n, count in Counter(n for n, _ in pairs).items() if count > 1)
        raise DataError(f"{where} has two rows for {twice}; give one filename,label row per image")
    names = {file.name for file in files}
    unlabeled = sorted(names - set(rows))
    missing = sorted(set(rows) - names)
    if unlabeled or missing:
        problem = (
            f"has no row for {unlabeled[0]} ({len(unlabeled)} images without one)"
            if unlabeled
            else f"names {missing[0]}, which is not in {folder} ({len(missing)} such rows)"
        )
        raise DataError(f"{where} {problem}; give one filename,label row per image")
    given = [rows[file.name] for file in files]
    if all(label.isdigit() for label in given):
        classes = [str(k) for k in range(max(int(label) for label in given) + 1)]
        index = {name: int(name) for name in set(given)}
    else:
        classes = sorted(set(given))
        index = {name: k for k, name in enumerate(classes)}
    labels = np.asarray([index[label] for label in given], np.int32)
    order = np.argsort(labels, kind="stable")
    return [files[i] for i in order], classes, labels[order]


def content_key(files: list[pathlib.Path], root: pathlib.Path) -> str:
    """SHA-256 over every file's path (relative to `root`) and bytes: equal keys, equal data."""
    digest = hashlib.sha256(READER_VERSION.encode())
    for file in files:
        digest.update(str(file.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def decode(files: list[pathlib.Path], image_size: int | None, channels: int | None) -> np.ndarray:
    """uint8 `[N, H, W, C]`: each file decoded, converted to `channels` (None: the files' own,
    which must agree) and cropped and resized to `image_size` (None: the files' size, which must
    agree)."""
    depths: dict[int, pathlib.Path] = {}
    for file in files:
        depths.setdefault(1 if _mode(file) in GREY_MODES else 3, file)
        if channels is None and len(depths) > 1:
            raise DataError(
                f"images mix grey ({depths[1]}) and colour ({depths[3]}); pass --channels 1 or "
                "--channels 3 to convert them all"
            )
    depth = channels or next(iter(depths))
    images, first = [], None
    for file in files:
        array = to_array(_open(file), image_size, depth)
        if first is None:
            first = (file, array.shape)
        elif array.shape != first[1]:
            raise DataError(
                f"images differ in size ({first[0]}: {_size(first[1])}, {file}: "
                f"{_size(array.shape)}); pass --image-size S (e.g. 32 or 64) to crop and resize "
                "them all"
            )
        images.append(array)
    return np.stack(images)


def read(root: pathlib.Path, image_size: int | None, channels: int | None) -> Arrays:
    """Every split of the folder: `{split}_images` uint8 `[N, H, W, C]`, `{split}_labels` int32
    `[N]` (labeled layouts), `class_names` (labeled layouts)."""
    arrays: Arrays = {}
    classes: list[str] | None = None
    for split, folder in split_folders(root).items():
        files, names, labels = labeled_files(folder)
        if split == "train":
            classes = names
        elif (names is None) != (classes is None) or (names and set(names) - set(classes or ())):
            raise DataError(
                f"{folder}'s classes {names or 'none'} differ from the training split's "
                f"{classes or 'none'}; give the test split the same class subfolders"
            )
        arrays[f"{split}_images"] = decode(files, image_size, channels)
        if classes is not None and names is not None and labels is not None:
            index = np.asarray([classes.index(name) for name in names], np.int32)
            arrays[f"{split}_labels"] = index[labels]
    if classes is not None:
        arrays["class_names"] = np.asarray(classes)
    return arrays


def _visible(paths) -> list[pathlib.Path]:
    return sorted(p for p in paths if not p.name.startswith("."))


def _require_image_name(file: pathlib.Path) -> None:
    if file.suffix.lower() not in SUFFIXES:
        raise DataError(
            f"{file} is not a PNG or JPEG image; remove it or move it out of the dataset folder"
        )


def _mode(file: pathlib.Path) -> str:
    """The image's Pillow mode, from its header (the pixels are read later)."""
    try:
        with Image.open(file) as picture:
            return picture.mode
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(
            f"{file} is not a readable PNG/JPEG image ({err}); replace or remove it"
        ) from None


def _open(file: pathlib.Path) -> Image.Image:
    """The decoded image (all pixels read), or DataError naming the file."""
    try:
        with Image.open(file) as picture:
            picture.load()
            return picture
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(
            f"{file} is not a readable PNG/JPEG image ({err}); replace or remove it"
        ) from None


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}×{shape[0]}"
