"""Issue 38's ablation table: SGAN options, alone and combined, from committed run summaries.

    python -m scripts.ablation benchmarks/results/sgan_*_cpu_runs.json --epoch 30 \
        --name sgan_ablation_cpu --out benchmarks/results

Reads the JSON files `scripts.sgan_runs` writes (one object per workdir: its config, per data seed
every epoch's row, its training seconds), keeps the runs of `--models` (default mlp; a model other
than mlp is named in the method) on `--dataset` (default mnist) at the `--labels` counts, and groups
them by labels, task, stream seed and every option that differs from the recipe (a workdir that
appears in several files counts once, with its most epochs). Per group: test accuracy (%) of the
evaluated parameters per labelled subset at `--epoch` (or the group's last epoch all its subsets
reached, named in the table), mean ± std, the drop from each subset's best epoch, and training
seconds per member and epoch (as logged; the machine was often shared, so these are upper bounds).
Prints the markdown table; with `--name`, writes NAME.md, NAME.json and NAME_curves.png.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gan_jax.config import SGANConfig, SupervisedConfig  # noqa: E402
from gan_jax.data import DATASETS  # noqa: E402

DEFAULTS = SGANConfig()
# what a run's config may differ in without being another method
NOT_A_METHOD = {
    "task",
    "seed",
    "data_seeds",
    "labels",
    "epochs",
    "steps",
    "steps_per_call",
    "data_source",
    "checkpoint_every",
    "num_samples",
    "dataset",
    "model",
}
PRINTED = {
    "augment_shift",
    "entropy_weight",
    "balance_weight",
    "pseudo_label_weight",
    "pseudo_label_threshold",
    "pseudo_label_align",
    "strong_shift",
    "strong_rotate",
    "strong_cutout",
    "consistency_weight",
    "vat_weight",
    "vat_epsilon",
    "ema_decay",
    "unlabeled_weight",
}


def _recipe(config: dict) -> dict:
    """The recipe of `config`'s task and model, as a dict."""
    recipe_type = SGANConfig if config["task"] == "sgan" else SupervisedConfig
    return recipe_type.recipe(config.get("model", "mlp")).to_dict()


def _other_differences(config: dict, recipe: dict) -> list[str]:
    """`name value` for each field of `config` that differs from its task's `recipe` and that
    `method` does not name, so that no such run is merged into another method's row."""
    return [
        f"{name} {value}"
        for name, value in sorted(config.items())
        if name not in NOT_A_METHOD | PRINTED
        and value is not None
        and name in recipe
        and value != recipe[name]
    ]


def method(config: dict) -> str:
    """The options of `config` that differ from the recipe, in words ("recipe" when none)."""
    recipe = _recipe(config)
    # each option as set, else as in its task's recipe, else as in the SGAN's
    values = {**DEFAULTS.to_dict(), **recipe, **{k: v for k, v in config.items() if v is not None}}
    get = values.__getitem__
    parts = []
    if get("augment_shift"):
        parts.append(f"shift {get('augment_shift')}")
    entropy, balance = get("entropy_weight"), get("balance_weight")
    if entropy and entropy == balance:
        parts.append(f"CatGAN pair {entropy:g}")
    else:
        parts += [f"{n} {w:g}" for n, w in (("entropy", entropy), ("balance", balance)) if w]
    if get("pseudo_label_weight"):
        parts.append(f"pseudo-labels {get('pseudo_label_weight'):g}")
        if get("pseudo_label_threshold") != DEFAULTS.pseudo_label_threshold:
            parts.append(f"threshold {get('pseudo_label_threshold'):g}")
    if get("pseudo_label_weight") or get("consistency_weight"):
        if get("strong_shift") != DEFAULTS.strong_shift:
            parts.append(f"strong shift {get('strong_shift')}")
        if get("strong_rotate"):
            parts.append(f"rotate {get('strong_rotate'):g}°")
        if get("strong_cutout"):
            parts.append(f"cutout {get('strong_cutout')}")
    if get("pseudo_label_align") and get("pseudo_label_weight"):
        parts.append("align")
    if get("consistency_weight"):
        parts.append(f"consistency {get('consistency_weight'):g}")
    if get("vat_weight"):
        parts.append(f"VAT {get('vat_weight'):g} (ε {get('vat_epsilon'):g})")
    if get("ema_decay") != recipe.get("ema_decay", DEFAULTS.ema_decay):
        parts.append(f"EMA {get('ema_decay'):g}")
    if config["task"] == "sgan" and get("unlabeled_weight") != DEFAULTS.unlabeled_weight:
        weight = get("unlabeled_weight")
        parts.append(f"real/fake weight {weight:g}" if weight else "no real/fake term")
    parts += _other_differences(config, recipe)
    text = " + ".join(parts) or "recipe"
    text = text if config["task"] == "sgan" else f"{config['task']}: {text}"
    model = config.get("model", "mlp")
    return text if model == "mlp" else f"{model} {text}"


def load_runs(
    files: list[pathlib.Path],
    labels: set[int],
    dataset: str = "mnist",
    models: frozenset[str] = frozenset({"mlp"}),
) -> list[dict]:
    """The workdirs of `models` on `dataset` of `files` at `labels`, each once (its most epochs)."""
    runs: dict[str, dict] = {}
    for path in files:
        for run in json.loads(path.read_text()):
            c = run["config"]
            if c.get("dataset", "mnist") != dataset or c.get("model", "mlp") not in models:
                continue
            if c["labels"] not in labels or c["task"] not in ("sgan", "supervised"):
                continue
            kept = runs.get(run["workdir"])
            if kept is None or run["epochs_done"] > kept["epochs_done"]:
                runs[run["workdir"]] = {**run, "source": path.name}
    return list(runs.values())


def group(runs: list[dict], epoch: int, table_subsets: set[int]) -> list[dict]:
    """One row per (labels, method, stream seed, held out or not): its subsets' accuracies at a
    common epoch. A subset run in several workdirs counts once, with its most epochs."""
    groups: dict[tuple, dict] = {}
    for run in runs:
        c = run["config"]
        for seed, rows in run["all_epochs"].items():
            held_out = int(seed) not in table_subsets
            key = (c["labels"], method(c) + (" (held-out subsets)" if held_out else ""), c["seed"])
            g = groups.setdefault(
                key, {"curves": {}, "seconds": 0.0, "member_epochs": 0, "src": set(), "cpus": set()}
            )
            curve = {r["epoch"]: 100 * r["test_accuracy"] for r in rows}
            if len(curve) > len(g["curves"].get(int(seed), {})):
                g["curves"][int(seed)] = curve
            g["seconds"] += run["train_seconds"] / len(run["all_epochs"])
            g["member_epochs"] += run["epochs_done"]
            g["src"].add(f"{run['source']}:{pathlib.Path(run['workdir']).name}")
            g["cpus"].add((run.get("machine") or {}).get("cpu") or "unknown")
    table = []
    for (labels, name, seed), g in sorted(groups.items()):
        at = min([epoch] + [max(curve) for curve in g["curves"].values()])
        reached = {s: curve for s, curve in sorted(g["curves"].items()) if at in curve}
        accs = {s: curve[at] for s, curve in reached.items()}
        drops = [max(v for e, v in c.items() if e <= at) - c[at] for c in reached.values()]
        table.append(
            {
                "labels": labels,
                "method": name,
                "seed": seed,
                "epoch": at,
                "per_subset": accs,
                "mean": statistics.mean(accs.values()),
                "std": statistics.stdev(accs.values()) if len(accs) > 1 else 0.0,
                "largest_drop_from_best": max(drops),
                "seconds_per_member_epoch": g["seconds"] / max(g["member_epochs"], 1),
                "curves": g["curves"],
                "sources": sorted(g["src"]),
                "machines": sorted(g["cpus"]),
            }
        )
    return table


def markdown(table: list[dict], epoch: int) -> str:
    lines = [
        f"| labels | method | `--seed` | epoch (≤ {epoch}) | subsets | mean ± std % | per subset % "
        "| largest drop from best | s / member-epoch |",
        "|" + "---|" * 9,
    ]
    for r in table:
        subsets = ",".join(map(str, r["per_subset"]))
        values = " / ".join(f"{v:.1f}" for v in r["per_subset"].values())
        lines.append(
            f"| {r['labels']} | {r['method']} | {r['seed']} | {r['epoch']} | {subsets} | "
            f"{r['mean']:.2f} ± {r['std']:.2f} | {values} | {r['largest_drop_from_best']:.1f} | "
            f"{r['seconds_per_member_epoch']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def plot(table: list[dict], path: pathlib.Path, title: str = "MNIST") -> None:
    """Mean test accuracy over each group's subsets per epoch, one panel per label count."""
    counts = sorted({r["labels"] for r in table})
    fig, axes = plt.subplots(1, len(counts), figsize=(7 * len(counts), 7), squeeze=False)
    colors = [plt.get_cmap("tab20")(i) for i in range(20)]
    for ax, labels in zip(axes[0], counts, strict=True):
        for i, r in enumerate(r for r in table if r["labels"] == labels):
            epochs = sorted(set.intersection(*(set(c) for c in r["curves"].values())))
            means = [statistics.mean(c[e] for c in r["curves"].values()) for e in epochs]
            label = f"{r['method']} (seed {r['seed']}, {len(r['curves'])} subsets)"
            style = "--" if "held-out" in r["method"] else "-"
            ax.plot(epochs, means, style, color=colors[i % len(colors)], label=label)
        ax.set(xlabel="epoch", ylabel="test accuracy % (mean over subsets)", ylim=(0, 100))
        ax.set_title(f"{title}, {labels} labels")
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=pathlib.Path)
    parser.add_argument("--epoch", type=int, default=30)
    parser.add_argument("--labels", default="20,100")
    parser.add_argument("--dataset", default="mnist", choices=sorted(DATASETS))
    parser.add_argument("--models", default="mlp", help="comma-separated: mlp,conv")
    parser.add_argument(
        "--table-subsets", default="0,1,2,3,4", help="data seeds of the table; others: held out"
    )
    parser.add_argument("--name", default=None)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results"))
    args = parser.parse_args()
    models = frozenset(args.models.split(","))
    runs = load_runs(args.files, {int(n) for n in args.labels.split(",")}, args.dataset, models)
    table = group(runs, args.epoch, {int(n) for n in args.table_subsets.split(",")})
    text = markdown(table, args.epoch)
    print(text)
    if args.name:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{args.name}.json").write_text(json.dumps(table, indent=1) + "\n")
        plot(table, args.out / f"{args.name}_curves.png", DATASETS[args.dataset].title)
        command = " ".join(["python -m scripts.ablation", *sys.argv[1:]])
        header = (
            f"# SGAN options: ablation at {args.labels} labels\n\n"
            f"{DATASETS[args.dataset].title}, the {' and '.join(sorted(models))} model"
            f"{'s' if len(models) > 1 else ''}; test accuracy of the evaluated "
            f"parameters. Regenerated by `{command}`; each row's machines and source files "
            f"are in `{args.name}.json`.\n\n"
        )
        (args.out / f"{args.name}.md").write_text(header + text)


if __name__ == "__main__":
    main()
