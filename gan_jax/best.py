"""The classifier state with the best validation accuracy so far, kept beside the checkpoints.

A classifier trained with a validation split (`--val-fraction`, or a dataset's own) scores it at
every epoch's end; when the members' mean `val_accuracy` beats the best so far, the classifier's
parameters, average and statistics, with its step, epoch and accuracy, are written to one file,
`DIR/best/classifier.npz` (written whole, then renamed: a reader never sees half of it).
`evaluate`, `predict` and `export` read it with `--checkpoint best`; the default is the latest.
"""

from __future__ import annotations

import io
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import CheckpointError
from gan_jax.workdir import write_atomically

FOLDER = "best"
FILE = "classifier.npz"


def _leaves(classifier: Any) -> dict[str, np.ndarray]:
    """`{path: array}` of a classifier `ModelState`'s params, ema and batch_stats."""
    parts = {
        "params": classifier.params,
        "ema": classifier.ema,
        "batch_stats": classifier.batch_stats,
    }
    return {
        jax.tree_util.keystr(path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(parts)
    }


def record(workdir: pathlib.Path, state: Any, val_accuracy: float, epoch: int) -> bool:
    """Keeps `state`'s classifier if `val_accuracy` beats the best kept so far; returns whether."""
    kept = read_record(workdir)
    if kept is not None and kept["val_accuracy"] >= val_accuracy:
        return False
    folder = pathlib.Path(workdir) / FOLDER
    folder.mkdir(exist_ok=True)
    info = {"step": int(state.step), "epoch": epoch, "val_accuracy": val_accuracy}
    arrays = {**_leaves(state.models["classifier"]), **{k: np.asarray(v) for k, v in info.items()}}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    write_atomically(folder / FILE, buffer.getvalue())
    return True


def read_record(workdir: pathlib.Path) -> dict[str, Any] | None:
    """`{"step", "epoch", "val_accuracy"}` of the kept classifier, or None."""
    path = pathlib.Path(workdir) / FOLDER / FILE
    if not path.is_file():
        return None
    with np.load(path) as stored:
        return {
            "step": int(stored["step"]),
            "epoch": int(stored["epoch"]),
            "val_accuracy": float(stored["val_accuracy"]),
        }


def restore(workdir: pathlib.Path, state: Any) -> Any:
    """`state` (the latest checkpoint's) with the kept classifier and its step."""
    path = pathlib.Path(workdir) / FOLDER / FILE
    if not path.is_file():
        raise CheckpointError(
            f"{workdir} has no best checkpoint: one is kept at each complete epoch's end when a "
            "classifier trains with a validation split (--val-fraction F, or a dataset's own val "
            "split); use the latest"
        )
    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files}
    step = int(arrays.pop("step"))
    del arrays["epoch"], arrays["val_accuracy"]
    classifier = state.models["classifier"]
    parts = {
        "params": classifier.params,
        "ema": classifier.ema,
        "batch_stats": classifier.batch_stats,
    }
    paths, treedef = jax.tree_util.tree_flatten_with_path(parts)
    names = [jax.tree_util.keystr(path) for path, _ in paths]
    if sorted(names) != sorted(arrays) or any(
        arrays[name].shape != leaf.shape for name, (_, leaf) in zip(names, paths, strict=True)
    ):
        raise CheckpointError(
            f"{path} does not match this run's classifier; remove {path.parent} and train on"
        )
    parts = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(arrays[name]) for name in names])
    classifier = classifier.replace(**parts)
    models = {**state.models, "classifier": classifier}
    return state.replace(step=jnp.asarray(step, jnp.int32), models=models)
