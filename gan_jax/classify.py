"""A trained classifier (`sgan` or `supervised` workdir) put to use: class probabilities of new
images, a CSV of predictions, and a `jax.export` artifact that runs without gan_jax.

The classifier is a pure function `uint8 images [N, H, W, C] → float32 probabilities [N, K]`:
each data-seed member's softmax of its class logits (evaluation parameters, noise off), averaged
over the members, or one member's. `predict` and `export` share it, so an exported file gives
what `predict` gives.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import data as data_lib
from gan_jax.data.sources import folder
from gan_jax.errors import ConfigError, DataError
from gan_jax.steps import TrainState, map_in_chunks
from gan_jax.workdir import write_atomically

CHUNK = 512  # images per chunk of `probabilities` (the last one zero-padded)
EXPORT_FORMAT = 1  # the sidecar JSON's `format`: bump when its fields change


def class_names(task) -> tuple[str, ...]:
    """The run's class names: its dataset's, or the label numbers `"0"`, `"1"`, …"""
    return task.dataset_spec.class_names or tuple(str(k) for k in range(task.num_classes))


def probabilities_fn(task, state: TrainState, member: int | None = None) -> Callable:
    """`f(images_u8 [N, H, W, C]) -> float32 [N, K]`, pure and jittable, with the classifier's
    evaluation parameters closed over: the members' mean probability, or member `member`'s."""
    if not hasattr(task, "eval_params"):
        raise ConfigError(
            f"a {task.config.task} workdir has no classifier; predict and export take an sgan or "
            "supervised workdir"
        )
    members = task.num_members
    if member is not None and not 0 <= member < members:
        raise ConfigError(
            f"member must be in 0..{members - 1} (this run's data seeds), got {member}"
        )
    params = task.eval_params(state)
    batch_stats = state.models["classifier"].batch_stats
    chosen = range(members) if member is None else (member,)

    def member_probabilities(k: int, images: jax.Array) -> jax.Array:
        params_k, stats_k = jax.tree.map(lambda x: x[k], (params, batch_stats))
        logits = task.classify(params_k, stats_k, task.pixels(images), None, train=False)[0]
        return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)

    def mean_probabilities(images: jax.Array) -> jax.Array:
        return jnp.mean(jnp.stack([member_probabilities(k, images) for k in chosen]), axis=0)

    return mean_probabilities


def probabilities(task, state: TrainState, images: np.ndarray, member: int | None = None):
    """float32 `[N, K]` class probabilities of uint8 `images` `[N, H, W, C]` (see
    `probabilities_fn`), `CHUNK` images at a time on the device."""
    images = _shaped_as_trained(task, images)
    fn = probabilities_fn(task, state, member)
    return np.asarray(jax.jit(lambda x: map_in_chunks(fn, x, CHUNK))(images))


def read_images(task, spec: str, split: str | None = None) -> tuple[list[str], np.ndarray]:
    """`(ids, images)` to classify, shaped as the run trained: every PNG/JPEG under a folder or a
    single image file (ids: their paths), or a dataset's `split` (ids: positions in it). The run's
    own dataset is split as in training (its held-out test and val splits); any other is read
    whole. `split` None: 'test' where the dataset has one, else 'train' (all its images)."""
    c = task.config
    path = pathlib.Path(spec.removeprefix("folder:")).expanduser()
    if spec.startswith("folder:") or path.suffix.lower() in folder.SUFFIXES:
        files = [path] if path.is_file() else _image_files(path)
        return [str(f) for f in files], folder.decode(files, c.image_size, c.channels)
    fractions = (c.test_fraction, c.val_fraction) if spec == c.dataset else (None, None)
    shape = dict(image_size=c.image_size, channels=c.channels)
    if split is None:
        splits = data_lib.describe(spec, **shape, test_fraction=fractions[0]).splits
        split = "test" if "test" in splits else "train"
    data = data_lib.load(
        spec, split, **shape, test_fraction=fractions[0], val_fraction=fractions[1]
    )
    return [str(i) for i in range(len(data.images))], data.images


def write_predictions(
    names: list[str], ids: list[str], probs: np.ndarray, out: str | os.PathLike | None
) -> None:
    """CSV rows `id, class, confidence, p_<class>…` (classes `names`) to `out` (written whole,
    then renamed over it), or to standard output."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "class", "confidence", *(f"p_{name}" for name in names)])
    for image_id, row in zip(ids, probs, strict=True):
        top = int(np.argmax(row))
        writer.writerow([image_id, names[top], f"{row[top]:.6f}", *(f"{p:.6f}" for p in row)])
    if out is None:
        sys.stdout.write(buffer.getvalue())
    else:
        write_atomically(pathlib.Path(out), buffer.getvalue().encode())


def export(task, state: TrainState, out: str | os.PathLike, member: int | None = None) -> dict:
    """Writes the classifier as a serialized `jax.export` artifact to `out` (uint8 images
    `[batch, H, W, C]` of any batch size → float32 probabilities `[batch, K]`, for CPU and CUDA)
    and `out.json` beside it (class names, input shape, members); returns that JSON's content."""
    shape = task.image_shape
    fn = jax.jit(probabilities_fn(task, state, member))
    (batch,) = jax.export.symbolic_shape("batch")
    exported = jax.export.export(fn, platforms=("cpu", "cuda"))(
        jax.ShapeDtypeStruct((batch, *shape), jnp.uint8)
    )
    info: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "task": task.config.task,
        "input_shape": ["batch", *shape],
        "input_dtype": "uint8",
        "output": "float32 class probabilities [batch, num_classes]",
        "class_names": list(class_names(task)),
        "members": list(range(task.num_members)) if member is None else [member],
        "step": int(state.step),
        "platforms": list(exported.platforms),
    }
    out = pathlib.Path(out)
    write_atomically(out, bytes(exported.serialize()))
    write_atomically(
        out.with_name(out.name + ".json"), (json.dumps(info, indent=1) + "\n").encode()
    )
    return info


def _shaped_as_trained(task, images: np.ndarray) -> np.ndarray:
    shape, given = task.image_shape, np.shape(images)[1:]
    if given not in (shape, shape[:2] if shape[-1] == 1 else shape):
        size = "×".join(map(str, shape))
        raise DataError(
            f"images are {'×'.join(map(str, given))}, this classifier was trained on {size} "
            f"images; give {size} images (the same --image-size and --channels as its training)"
        )
    return data_lib.check_images(images, shape)


def _image_files(root: pathlib.Path) -> list[pathlib.Path]:
    if not root.is_dir():
        raise DataError(f"{root} does not exist; pass a folder of PNG/JPEG images or one image")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in folder.SUFFIXES)
    files = [
        p for p in files if not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    if not files:
        raise DataError(f"{root} has no PNG or JPEG images; pass a folder of images to classify")
    return files
