"""The label-count sweep: SGAN against the supervised baseline over label counts and data seeds.

For each label count and method, all data seeds train together as members of one vmapped
program in `OUT/runs/<method>_labels<N>/` (a normal workdir: rerunning the sweep resumes it).
Then `OUT/` gets `results.csv` (one row per run), `results.md` (mean ± std per label count),
`results.json`, `accuracy_vs_labels.png` (the bar chart) and `samples_over_training.png`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import pathlib
import platform
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from gan_jax import plots
from gan_jax.api import evaluate_run
from gan_jax.data import describe, labeled_subset, load_for
from gan_jax.errors import DataError
from gan_jax.loop import train
from gan_jax.tasks import TASKS
from gan_jax.workdir import check_workdir, write_atomically

log = logging.getLogger("gan_jax")

_METHOD_TASKS: dict[str, type[Any]] = {name: TASKS[name] for name in ("sgan", "supervised")}
METHODS = {name: task.config_type for name, task in _METHOD_TASKS.items()}
# Per (dataset, model): published test accuracy (%) by label count, and this project's targets.
# mlp: Improved GAN, feature matching (REFERENCE.md §4). conv: "GANs in Action" ch. 7, one run at
# 100 labels (REFERENCE.md §2). A pair without an entry gets no reference columns.
REFERENCES = {
    ("mnist", "mlp"): {
        "Improved GAN %": {20: 83.23, 50: 97.79, 100: 99.07},
        "target %": {20: 96.0, 50: 98.8, 100: 99.25, 1000: 99.4},
    },
    ("mnist", "conv"): {
        "book SGAN %": {100: 89.41},
        "book supervised %": {100: 69.22},
    },
}


def sweep_configs(
    label_counts: Sequence[int],
    data_seeds: Sequence[int],
    *,
    model: str = "mlp",
    methods: Sequence[str] = ("sgan", "supervised"),
    **overrides: Any,
) -> dict[tuple[str, int], Any]:
    """`(method, labels) → config` for every run of the sweep (validated; nothing is written)."""
    configs = {}
    for labels in label_counts:
        for method in methods:
            kind = METHODS[method]
            # The baseline has no generator options.
            fields = {f.name for f in dataclasses.fields(kind)}
            mine = {k: v for k, v in overrides.items() if k in fields}
            configs[(method, labels)] = kind.recipe(
                model, labels=labels, data_seeds=tuple(data_seeds), **mine
            )
    return configs


def _result_rows(
    method: str,
    model: str,
    labels: int,
    data_seeds: Sequence[int],
    result: dict[str, Any],
    steps_per_epoch: int,
) -> list[dict[str, Any]]:
    """results.csv's rows of one run: one per data seed, from its `evaluate_run` result."""
    accuracies = np.atleast_1d(result["test_accuracy"]).tolist()
    return [
        {
            "method": method,
            "model": model,
            "labels": labels,
            "data_seed": seed,
            "test_accuracy": accuracy,
            "test_error_pct": round(100 * (1 - accuracy), 4),
            "step": result["step"],
            "epochs_trained": round(result["step"] / steps_per_epoch, 3),
        }
        for seed, accuracy in zip(data_seeds, accuracies, strict=False)
    ]


def run_sweep(
    label_counts: Sequence[int],
    data_seeds: Sequence[int],
    out: str | pathlib.Path,
    *,
    model: str = "mlp",
    methods: Sequence[str] = ("sgan", "supervised"),
    progress: bool = True,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """Trains (or resumes) every run, evaluates each data seed, and writes the sweep's reports.

    Args:
      label_counts: e.g. (20, 50, 100, 1000); each a positive multiple of the dataset's classes.
      data_seeds: e.g. (0, 1, 2, 3, 4).
      out: output folder.
      model: 'mlp' or 'conv' (its recipe's defaults apply).
      methods: any of 'sgan', 'supervised'.
      overrides: config fields (epochs, steps, data_source, ...); None values keep the recipe's.
    Returns:
      The rows of results.csv.
    """
    configs = sweep_configs(label_counts, data_seeds, model=model, methods=methods, **overrides)
    out = check_workdir(out)
    first = next(iter(configs.values()))
    train_split = load_for(first, "train")
    num_classes = describe(
        first.dataset, first.image_size, first.channels, test_fraction=first.test_fraction
    ).num_classes
    if train_split.labels is None:
        raise DataError(f"{first.dataset} has no labels; a sweep needs a labeled dataset")
    for labels in label_counts:  # every subset is checked before anything trains or is written
        labeled_subset(train_split.labels, labels, data_seeds[0], num_classes)
    test_split = load_for(first, "test")
    rows, seconds = [], 0.0
    for (method, labels), config in configs.items():
        workdir = out / "runs" / f"{method}_labels{labels}"
        steps_per_epoch = len(train_split.images) // config.batch_size
        run_start = time.time()
        log.info("sweep: %s with %d labels, data seeds %s", method, labels, list(data_seeds))
        train(config, workdir, data=train_split, test_data=test_split, progress=progress)
        seconds += _add_training_seconds(workdir, time.time() - run_start)
        result = evaluate_run(workdir, test_split, classification_metrics=False)
        rows += _result_rows(method, model, labels, config.data_seeds, result, steps_per_epoch)
        log.info(
            "sweep: %s %d labels: mean test accuracy %.4f (%.0f s)",
            method,
            labels,
            np.mean(result["test_accuracy"]),
            time.time() - run_start,
        )
    write_reports(rows, out, seconds=seconds, configs=configs, num_test=len(test_split.images))
    return rows


def _add_training_seconds(workdir: pathlib.Path, seconds: float) -> float:
    """Adds this invocation's `seconds` to the run's `sweep_seconds.json` and returns the run's
    total over every invocation (a resumed sweep counts each run's earlier time too)."""
    path = workdir / "sweep_seconds.json"
    total = seconds + (json.loads(path.read_text())["seconds"] if path.exists() else 0.0)
    write_atomically(path, (json.dumps({"seconds": round(total, 1)}) + "\n").encode())
    return total


def summarize(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """`(method, labels) → {mean, std, n}` of test accuracy in percent (std with ddof=1; 0 for one
    run), plus `epochs: [fewest, most]` trained when the rows say (`epochs_trained`)."""
    groups: dict[tuple[str, int], list[float]] = {}
    epochs: dict[tuple[str, int], list[float]] = {}
    for row in rows:
        key = (row["method"], row["labels"])
        groups.setdefault(key, []).append(100 * row["test_accuracy"])
        if "epochs_trained" in row:
            epochs.setdefault(key, []).append(float(row["epochs_trained"]))
    stats: dict[tuple[str, int], dict[str, Any]] = {
        key: {
            "mean": float(np.mean(v)),
            "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
            "n": len(v),
        }
        for key, v in groups.items()
    }
    for key, trained in epochs.items():
        stats[key]["epochs"] = [min(trained), max(trained)]
    return stats


def markdown_table(rows: Sequence[dict[str, Any]], dataset: str = "mnist") -> str:
    """Mean ± std test accuracy per label count and method (with the runs' count and epochs),
    beside the `REFERENCES` of `dataset` and the rows' model (default mlp): published numbers and,
    where there are targets, whether the SGAN met them."""
    stats = summarize(rows)
    label_counts = sorted({labels for _, labels in stats})
    methods = [m for m in METHODS if any(key[0] == m for key in stats)]
    model = next((row["model"] for row in rows if "model" in row), "mlp")
    references = REFERENCES.get((dataset, model), {})
    cell = lambda key: (
        f"{stats[key]['mean']:.2f} ± {stats[key]['std']:.2f} (n={stats[key]['n']}"
        f"{_epochs(stats[key])})"
        if key in stats
        else "–"
    )
    header = [
        "labels",
        *[f"{m} accuracy %" for m in methods],
        *references,
        *(["target met"] if "target %" in references else []),
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for labels in label_counts:
        row = [
            str(labels),
            *[cell((m, labels)) for m in methods],
            *[str(r.get(labels, "–")) for r in references.values()],
        ]
        if "target %" in references:
            sgan, target = stats.get(("sgan", labels)), references["target %"].get(labels)
            row.append(
                "–"
                if sgan is None or target is None
                else ("yes" if sgan["mean"] >= target else "no")
            )
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _epochs(stat: dict[str, Any]) -> str:
    """', 20 epochs' (or ', 5–20 epochs' when the runs differ); '' when unknown."""
    if "epochs" not in stat:
        return ""
    low, high = stat["epochs"]
    return f", {low:g} epochs" if low == high else f", {low:g}–{high:g} epochs"


def write_csv(rows: Sequence[dict[str, Any]], path: pathlib.Path) -> None:
    """The rows as CSV, one per run, columns in the first row's order."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_reports(
    rows: Sequence[dict[str, Any]],
    out: pathlib.Path,
    *,
    seconds: float,
    configs: dict[tuple[str, int], Any],
    num_test: int,
) -> None:
    """results.csv, results.md, results.json, accuracy_vs_labels.png, samples_over_training.png."""
    dataset = next(iter(configs.values())).dataset
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / "results.csv")
    machine = {
        "device": jax.devices()[0].device_kind,
        "platform": jax.default_backend(),
        "cpu": platform.processor() or platform.machine(),
        "jax": jax.__version__,
    }
    (out / "results.md").write_text(
        f"Test accuracy on the {num_test:,} {dataset} test images (final parameters), mean ± std "
        f"over data seeds.\n\n{markdown_table(rows, dataset)}\nMachine: {machine['device']} "
        f"({machine['platform']}), jax {machine['jax']}; the runs trained for "
        f"{seconds / 60:.1f} min (every invocation's time, resumes included).\n"
    )
    stats = summarize(rows)
    summary = {f"{m}/{n}": v for (m, n), v in stats.items()}
    (out / "results.json").write_text(
        json.dumps(
            {
                "summary": summary,
                "rows": list(rows),
                "machine": machine,
                "seconds": round(seconds, 1),
                "configs": {f"{m}/{n}": c.to_dict() for (m, n), c in configs.items()},
            },
            indent=1,
        )
        + "\n"
    )
    plots.save_accuracy_bars(out / "accuracy_vs_labels.png", stats)
    sample_runs = {
        labels: out / "runs" / f"sgan_labels{labels}" / "samples"
        for (m, labels) in configs
        if m == "sgan"
    }
    if sample_runs:
        plots.save_samples_over_training(out / "samples_over_training.png", sample_runs)
