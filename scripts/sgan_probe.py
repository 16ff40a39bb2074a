"""Whether a few-label classifier's errors are in its features or in how its labels name them.

    python -m scripts.sgan_probe WORKDIR [WORKDIR ...] [--raw] [--train-images 20000]
        [--name NAME --out DIR]

For every member (data seed) of each workdir's newest intact checkpoint, four scores of test images,
all on the classifier's own features (`task.embed`: the layer its output layer reads, noise off):

- `classifier`: the classifier itself (argmax of its logits);
- `labeled_centroids`: the nearest class mean (cosine) of its L labeled images' features, what
  its labels give with these features and nothing trained on them;
- `kmeans_purity`: k-means (k = K, cosine, the tightest of 5 starts) on the test features, each
  cluster named by its most common true label: whether the features fall into one cluster per
  class without any labels;
- `probe_all_labels`: a softmax regression on the features of `--train-images` training images
  with all their labels, how well the features separate the classes at all.

A high probe with a low classifier means the features separate the digits and the few labels put
the class boundaries in the wrong places; a low probe means the features themselves merge classes.
Prints a markdown table; with `--name`, writes NAME.json into `--out`, else prints the JSON too.
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from scripts.sgan_errors import runs

PROBE_STEPS = 500
PROBE_LEARNING_RATE = 0.05


def unit(x: np.ndarray) -> np.ndarray:
    """Rows of `x` scaled to unit length (zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def centroid_accuracy(
    labeled: np.ndarray,
    labeled_y: np.ndarray,
    test: np.ndarray,
    test_y: np.ndarray,
    num_classes: int,
) -> float:
    """Accuracy of the nearest class mean by cosine similarity: features `[L, F]` with int labels
    `[L]` (every class present) against `[N, F]` and `[N]`."""
    means = unit(np.stack([unit(labeled[labeled_y == k]).mean(0) for k in range(num_classes)]))
    return float(np.mean(np.argmax(unit(test) @ means.T, axis=-1) == test_y))


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 50) -> np.ndarray:
    """Spherical k-means of unit rows `[N, F]` from k-means++ seeding: int cluster `[N]`."""
    centers = x[[rng.integers(len(x))]]
    while len(centers) < k:  # k-means++: points far from every center more likely
        gap = np.maximum(1 - np.max(x @ centers.T, axis=1), 0)
        centers = np.vstack([centers, x[rng.choice(len(x), p=gap / gap.sum())]])
    for _ in range(iters):
        assign = np.argmax(x @ centers.T, axis=1)
        means = [x[assign == j].mean(0) if np.any(assign == j) else centers[j] for j in range(k)]
        centers = unit(np.stack(means))
    return np.argmax(x @ centers.T, axis=1)


def kmeans_purity(
    features: np.ndarray, labels: np.ndarray, num_classes: int, restarts: int = 5
) -> float:
    """Share of `[N, F]` features whose k-means cluster (k = `num_classes`, cosine; the tightest
    of `restarts` runs from seeds 0, 1, ...) has their label as its most common one: how well the
    features fall into one cluster per class, with no labels used to form the clusters."""
    x = unit(features)

    def tightness(assign):
        return sum(np.linalg.norm(x[assign == j].sum(0)) for j in np.unique(assign))

    clusterings = [kmeans(x, num_classes, np.random.default_rng(s)) for s in range(restarts)]
    assign = max(clusterings, key=tightness)
    majority = sum(np.bincount(labels[assign == j]).max() for j in np.unique(assign))
    return float(majority / len(labels))


def probe_accuracy(
    train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray, num_classes: int
) -> float:
    """Test accuracy of a softmax regression on standardized features: `[M, F]`, int `[M]` to fit
    (full batch, Adam, `PROBE_STEPS` steps from zero weights), `[N, F]`, `[N]` to score."""
    mean, std = train.mean(0), train.std(0) + 1e-6
    w, b = _fit_softmax_regression(
        jnp.asarray((train - mean) / std), jnp.asarray(train_y), num_classes
    )
    logits = np.asarray(jnp.asarray((test - mean) / std) @ w + b)
    return float(np.mean(np.argmax(logits, -1) == test_y))


@functools.partial(jax.jit, static_argnums=2)
def _fit_softmax_regression(x: jax.Array, y: jax.Array, num_classes: int):
    """`(w [F, K], b [K])` fitted to standardized `x` `[M, F]` and int `y` `[M]` (compiled once
    per shape, not per member)."""
    tx = optax.adam(PROBE_LEARNING_RATE)
    loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(x @ p[0] + p[1], y).mean()

    def step(carry, _):
        p, opt = carry
        updates, opt = tx.update(jax.grad(loss)(p), opt)
        return (optax.apply_updates(p, updates), opt), None

    params = (jnp.zeros((x.shape[1], num_classes)), jnp.zeros(num_classes))
    return jax.lax.scan(step, (params, tx.init(params)), length=PROBE_STEPS)[0][0]


def probe(workdirs: list[pathlib.Path], raw: bool, train_images: int) -> list[dict]:
    """One row per member: identity and its four scores (see the module docstring)."""
    rows = []
    for workdir, task, state, test, train, chosen in runs(workdirs):
        pick = np.random.default_rng(0).permutation(len(train.images))[:train_images]
        predictions = task.predict(state, test.images, raw=raw)
        test_f, train_f = (
            task.embed(state, test.images, raw),
            task.embed(state, train.images[pick], raw),
        )
        every_labeled = task.embed(state, train.images[chosen.ravel()], raw)  # once, all members
        for d, data_seed in enumerate(task.config.data_seeds):
            labeled_f = every_labeled[d].reshape(*chosen.shape, -1)[d]  # member d's own images
            k = task.num_classes
            rows.append(
                {
                    "workdir": str(workdir),
                    "seed": task.config.seed,
                    "data_seed": int(data_seed),
                    "step": int(state.step),
                    "labels": len(chosen[d]),
                    "features": int(test_f.shape[-1]),
                    "classifier": float(np.mean(predictions[d] == test.labels)),
                    "labeled_centroids": centroid_accuracy(
                        labeled_f, train.labels[chosen[d]], test_f[d], test.labels, k
                    ),
                    "kmeans_purity": kmeans_purity(test_f[d], test.labels, k),
                    "probe_all_labels": probe_accuracy(
                        train_f[d], train.labels[pick], test_f[d], test.labels, k
                    ),
                }
            )
    return rows


def table(rows: list[dict]) -> str:
    columns = ("classifier", "labeled_centroids", "kmeans_purity", "probe_all_labels")
    lines = [
        "| workdir | --seed | data seed | step | classifier % | labeled centroids % | "
        "k-means purity % | probe, all labels % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        scores = " | ".join(f"{100 * r[c]:.2f}" for c in columns)
        name = pathlib.Path(r["workdir"]).name
        lines.append(f"| {name} | {r['seed']} | {r['data_seed']} | {r['step']} | {scores} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdirs", nargs="+", type=pathlib.Path)
    parser.add_argument(
        "--raw", action="store_true", help="the current parameters, not the average"
    )
    parser.add_argument(
        "--train-images", type=int, default=20000, help="training images the probe fits"
    )
    parser.add_argument("--name", help="write NAME.json into --out")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("."))
    args = parser.parse_args()
    if args.train_images < 100:
        raise SystemExit(
            f"error: --train-images must be >= 100, got {args.train_images}; pass e.g. 20000"
        )
    rows = probe(args.workdirs, args.raw, args.train_images)
    print(table(rows))
    result = {
        "parameters": "raw" if args.raw else "evaluation average",
        "train_images": args.train_images,
        "probe_steps": PROBE_STEPS,
        "rows": rows,
    }
    if args.name:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    else:
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
