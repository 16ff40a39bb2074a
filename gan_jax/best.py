"""The classifier state with the best validation accuracy so far, kept beside the checkpoints.

A classifier trained with a validation split (`--val-fraction`, or a dataset's own) scores it at
every epoch's end; when the members' mean `val_accuracy` beats the best so far, the classifier's
parameters, average and statistics are written to `DIR/best/classifier.npz` and its step and
accuracy to `DIR/best/best.json` (each written whole, then renamed: a reader never sees half).
`evaluate`, `predict` and `export` read it with `--checkpoint best`; the default is the latest.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import jax
import numpy as np

from gan_jax.errors import CheckpointError

FOLDER = "best"


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
    folder = pathlib.Path(workdir) / FOLDER
    kept = read_record(workdir)
    if kept is not None and kept["val_accuracy"] >= val_accuracy:
        return False
    folder.mkdir(exist_ok=True)
    step = int(state.step)
    arrays = {**_leaves(state.models["classifier"]), "step": np.asarray(step)}
    _replace(folder / "classifier.npz", lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]
    info = {"step": step, "epoch": epoch, "val_accuracy": val_accuracy}
    _replace(folder / "best.json", lambda f: f.write((json.dumps(info) + "\n").encode()))
    return True


def read_record(workdir: pathlib.Path) -> dict[str, Any] | None:
    """`{"step", "epoch", "val_accuracy"}` of the kept state, or None."""
    path = pathlib.Path(workdir) / FOLDER / "best.json"
    return json.loads(path.read_text()) if path.is_file() else None


def restore(workdir: pathlib.Path, state: Any) -> Any:
    """`state` (the latest checkpoint's) with the kept classifier and its step."""
    kept = read_record(workdir)
    if kept is None:
        raise CheckpointError(
            f"{workdir} has no best checkpoint: one is kept only when a classifier trains with a "
            "validation split (--val-fraction F, or a dataset's own val split); use the latest"
        )
    with np.load(pathlib.Path(workdir) / FOLDER / "classifier.npz") as stored:
        arrays = {k: stored[k] for k in stored.files}
    if int(arrays.pop("step")) != kept["step"]:
        raise CheckpointError(f"{workdir}/{FOLDER} is incomplete; train on to write it again")
    classifier = state.models["classifier"]
    parts = {
        "params": classifier.params,
        "ema": classifier.ema,
        "batch_stats": classifier.batch_stats,
    }
    paths, treedef = jax.tree_util.tree_flatten_with_path(parts)
    names = [jax.tree_util.keystr(path) for path, _ in paths]
    if sorted(names) != sorted(arrays):
        raise CheckpointError(f"{workdir}/{FOLDER} does not match this run's classifier")
    parts = jax.tree_util.tree_unflatten(treedef, [arrays[name] for name in names])
    classifier = classifier.replace(**parts)
    return state.replace(
        step=np.int32(kept["step"]), models={**state.models, "classifier": classifier}
    )


def _replace(path: pathlib.Path, write) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as stream:
        write(stream)
    os.replace(temporary, path)
