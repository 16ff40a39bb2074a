"""Where few-label classifiers err, per data seed: what each gets wrong, and whether the labeled
subset or the run's random streams decide it.

    python -m scripts.sgan_errors WORKDIR [WORKDIR ...] [--raw] [--name NAME --out DIR]

Reads each workdir's newest intact checkpoint (SGAN or supervised, one or several data seeds) and
predicts the test split with every member (the evaluation's parameter average, or with `--raw` the
current parameters). Per member: accuracy, errors per true class, the most frequent
(true → predicted) pairs, and its *own* errors: the test images it gets wrong while most of the
other members get right. Across members: the overlap (Jaccard index) of their error sets, split
into pairs with the same labeled subset (same data seed, other `--seed`) and pairs with different
subsets: if the subset decides what a classifier gets wrong, same-subset pairs overlap more.

Prints a markdown table; with `--name`, writes NAME.json, NAME.png (the labeled images of the
member with the most own errors, and a sample of those errors with what it predicted) and
NAME_class.png (each data seed's labeled images of the class whose errors vary most between
members) into `--out`; without, prints the JSON too.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gan_jax import api  # noqa: E402
from gan_jax import data as data_lib  # noqa: E402

TOP_PAIRS = 5


def runs(workdirs: list[pathlib.Path]):
    """Per workdir: `(workdir, task, state, test split, train split, labeled indices [members, L])`,
    from its newest intact checkpoint; every run must be scored on the same test split."""
    test = None
    for workdir in workdirs:
        task, state = api.load_run(workdir)
        split = task.test_split(None)
        if test is not None and not np.array_equal(split.labels, test.labels):
            raise SystemExit(
                f"error: {workdir} is scored on another test split; give runs of one dataset"
            )
        test = split
        train = data_lib.load_for(task.config, "train")
        yield (
            workdir,
            task,
            state,
            split,
            train,
            task.feed.labeled_indices(np.asarray(train.labels)),
        )


def members(workdirs: list[pathlib.Path], raw: bool):
    """Per member: identity, predictions int `[N]` on the test split, labeled images `[L, H, W, C]`
    and their labels; and the test split (the same for every workdir: checked)."""
    found, test = [], None
    for workdir, task, state, test, train, chosen in runs(workdirs):
        predictions = task.predict(state, test.images, raw=raw)
        for d, data_seed in enumerate(task.config.data_seeds):
            found.append(
                {
                    "workdir": str(workdir),
                    "task": task.config.task,
                    "seed": task.config.seed,
                    "data_seed": int(data_seed),
                    "step": int(state.step),
                    "num_classes": task.num_classes,
                    "predictions": predictions[d],
                    "labeled_images": train.images[chosen[d]],
                    "labeled_labels": train.labels[chosen[d]],
                }
            )
    return found, test


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|a ∧ b| / |a ∨ b| of two boolean masks (1.0 when both are empty)."""
    union = np.sum(a | b)
    return float(np.sum(a & b) / union) if union else 1.0


def pairs_of(truth: np.ndarray, predicted: np.ndarray, mask: np.ndarray) -> list[list[int]]:
    """The most frequent `[true, predicted, count]` among the images in `mask`."""
    counts = collections.Counter(zip(truth[mask].tolist(), predicted[mask].tolist(), strict=True))
    return [[t, p, n] for (t, p), n in counts.most_common(TOP_PAIRS)]


def own_errors(wrong: np.ndarray, i: int) -> np.ndarray:
    """bool `[N]`: the images member i gets wrong while fewer than half of the others do, from
    `wrong`, bool `[members, N]` (all of its errors when it is the only member)."""
    others = np.delete(wrong, i, axis=0)
    return wrong[i] & (others.mean(axis=0) < 0.5) if len(others) else wrong[i]


def analyse(found: list[dict], labels: np.ndarray, num_classes: int) -> dict:
    """Per member (`found`: dicts with `predictions` int `[N]` and their identity) its accuracy,
    errors by class and pairs, own errors; across members, the Jaccard overlap of their error sets
    by same or different data seed, and the count of images every member gets wrong."""
    wrong = np.stack([m["predictions"] != labels for m in found])
    rows = []
    for i, m in enumerate(found):
        own = own_errors(wrong, i)
        rows.append(
            {
                **{k: m[k] for k in ("workdir", "task", "seed", "data_seed", "step")},
                "test_accuracy": float(1 - wrong[i].mean()),
                "errors": int(wrong[i].sum()),
                "errors_by_class": np.bincount(labels[wrong[i]], minlength=num_classes).tolist(),
                "top_pairs": pairs_of(labels, m["predictions"], wrong[i]),
                "own_errors": int(own.sum()),
                "own_top_pairs": pairs_of(labels, m["predictions"], own),
            }
        )
    same: list[float] = []
    different: list[float] = []
    for i, j in itertools.combinations(range(len(found)), 2):
        (same if found[i]["data_seed"] == found[j]["data_seed"] else different).append(
            jaccard(wrong[i], wrong[j])
        )
    overlap = {
        name: {
            "pairs": len(v),
            "mean": float(np.mean(v)),
            "min": float(np.min(v)),
            "max": float(np.max(v)),
        }
        for name, v in (("same_subset", same), ("different_subset", different))
        if v
    }
    return {
        "members": rows,
        "error_overlap_jaccard": overlap,
        "errors_of_every_member": int(np.all(wrong, axis=0).sum()),
    }


def plot(found: list[dict], test, result: dict, path: pathlib.Path) -> None:
    """The labeled images of the member with the most own errors, and up to 30 of those errors."""
    worst = max(range(len(found)), key=lambda i: result["members"][i]["own_errors"])
    m, row = found[worst], result["members"][worst]
    wrong = np.stack([f["predictions"] != test.labels for f in found])
    own = np.flatnonzero(own_errors(wrong, worst))[:30]
    labeled = m["labeled_images"]
    cols = 10
    fig, axes = plt.subplots(
        len(labeled) // cols + 3, cols, figsize=(cols, len(labeled) // cols + 3)
    )
    for ax in axes.ravel():
        ax.axis("off")
    for k, (image, label) in enumerate(zip(labeled, m["labeled_labels"], strict=True)):
        ax = axes[k // cols, k % cols]
        ax.imshow(image[..., 0], cmap="gray")
        ax.set_title(str(label), fontsize=7)
    first = len(labeled) // cols
    for k, index in enumerate(own):
        ax = axes[first + k // cols, k % cols]
        ax.imshow(test.images[index][..., 0], cmap="gray")
        ax.set_title(f"{test.labels[index]}→{m['predictions'][index]}", fontsize=7, color="red")
    fig.suptitle(
        f"data seed {row['data_seed']} (seed {row['seed']}): its {len(labeled)} labeled "
        f"images, then {len(own)} of its {row['own_errors']} own test errors (true→predicted)",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_class(found: list[dict], result: dict, path: pathlib.Path) -> int:
    """The labeled images of the class whose error count varies most between members, one row per
    data seed, each titled with every member's errors on that class; returns the class."""
    by_class = np.array([r["errors_by_class"] for r in result["members"]])
    worst = int(np.argmax(by_class.std(axis=0)))
    seeds = sorted({m["data_seed"] for m in found})
    images = {m["data_seed"]: m["labeled_images"][m["labeled_labels"] == worst] for m in found}
    cols = max(len(v) for v in images.values())
    fig, axes = plt.subplots(
        len(seeds), cols, figsize=(max(cols, 8), 1.3 * len(seeds)), squeeze=False
    )
    for row, seed in enumerate(seeds):
        errors = ", ".join(
            f"seed {r['seed']}: {r['errors_by_class'][worst]}"
            for r in result["members"]
            if r["data_seed"] == seed
        )
        for col, ax in enumerate(axes[row]):
            ax.axis("off")
            if col < len(images[seed]):
                ax.imshow(images[seed][col][..., 0], cmap="gray")
        axes[row, 0].set_title(
            f"data seed {seed}: test errors on {worst}s ({errors})", fontsize=8, loc="left"
        )
    fig.subplots_adjust(left=0.01, right=0.99, top=0.93, bottom=0.01, hspace=0.5)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdirs", nargs="+", type=pathlib.Path)
    parser.add_argument(
        "--raw", action="store_true", help="the current parameters, not the average"
    )
    parser.add_argument("--name", help="write NAME.json, NAME.png, NAME_class.png into --out")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("."))
    args = parser.parse_args()
    found, test = members(args.workdirs, args.raw)
    num_classes = max(m["num_classes"] for m in found)
    result = {
        "parameters": "raw" if args.raw else "evaluation average",
        **analyse(found, np.asarray(test.labels), num_classes),
    }
    print(table(result))
    if args.name:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
        plot(found, test, result, args.out / f"{args.name}.png")
        plot_class(found, result, args.out / f"{args.name}_class.png")
    else:
        print(json.dumps(result))


def table(result: dict) -> str:
    """A markdown table of the members and a line on the overlap of their errors."""
    lines = [
        "| workdir | seed | data seed | step | accuracy % | errors | own errors | own top pairs "
        "(true→predicted: count) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["members"]:
        pairs = ", ".join(f"{t}→{p}: {n}" for t, p, n in r["own_top_pairs"][:3])
        lines.append(
            f"| {pathlib.Path(r['workdir']).name} | {r['seed']} | {r['data_seed']} | {r['step']} "
            f"| {100 * r['test_accuracy']:.2f} | {r['errors']} | {r['own_errors']} | {pairs} |"
        )
    overlap = "; ".join(
        f"{k}: {v['mean']:.3f} ({v['min']:.3f}–{v['max']:.3f}, {v['pairs']} pairs)"
        for k, v in result["error_overlap_jaccard"].items()
    )
    lines.append(
        f"\nError overlap (Jaccard): {overlap}; errors every member makes: "
        f"{result['errors_of_every_member']}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
