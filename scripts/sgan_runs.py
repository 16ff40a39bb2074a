"""Summarize SGAN/supervised workdirs: per-epoch accuracy and losses per data seed, JSON and table.

    python -m scripts.sgan_runs WORKDIR [WORKDIR ...] [--epochs 1,5,10,20,30,50] \
        [--name NAME --out DIR]

Prints one JSON object (every run's config, machine, per data seed the rows at the chosen epochs
plus the last complete epoch, and the epochs at which the collapse guard would have warned) and a
markdown table of the same rows. With `--name`, writes NAME.json and NAME_curves.png (test accuracy
and real/fake loss per epoch) into `--out`.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gan_jax import collapse  # noqa: E402
from gan_jax.checkpoint import CheckpointStore  # noqa: E402
from gan_jax.workdir import TIMING_FILE, read_rows  # noqa: E402
from scripts.export_gan_results import cpu_model  # noqa: E402

COLUMNS = ("test_accuracy", "test_accuracy_raw", "sup_loss", "unsup_loss", "g_loss", "loss")


def summarize(workdir: pathlib.Path, epochs: list[int]) -> dict:
    """Config, machine, seconds, and `{data_seed: [rows at epochs ∪ last]}` of one workdir."""
    with CheckpointStore(workdir, create=False) as store:
        config = store.read_config()
    rows = [r for r in read_rows(workdir) if not r.get("partial")]
    timing = [r for r in read_rows(workdir, TIMING_FILE) if not r.get("partial")]
    seeds: dict[int, list[dict]] = {}
    for row in rows:
        seeds.setdefault(row["data_seed"], []).append(
            {k: row[k] for k in ("epoch", *COLUMNS) if k in row}
        )
    warned = {
        seed: [
            r["epoch"]
            for i, r in enumerate(seed_rows)
            if "unsup_loss" in r
            and collapse.newly_collapsing(
                [x["unsup_loss"] for x in seed_rows[: i + 1]],
                [x["g_loss"] for x in seed_rows[: i + 1]],
            )
        ]
        for seed, seed_rows in seeds.items()
    }
    last = max((r["epoch"] for r in rows), default=0)
    chosen = sorted({e for e in epochs if e <= last} | {last})
    return {
        "workdir": str(workdir),
        "task": config["task"],
        "config": config,
        "epochs_done": last,
        "train_seconds": round(sum(r["seconds"] + r.get("eval_seconds", 0) for r in timing), 1),
        "machine": {"device": timing[0]["device"] if timing else None, "cpu": cpu_model()},
        "collapse_guard_epochs": warned,  # epochs at which the guard would warn, per data seed
        "all_epochs": seeds,
        "rows": {
            seed: [r for r in seed_rows if r["epoch"] in chosen]
            for seed, seed_rows in seeds.items()
        },
    }


def markdown(summaries: list[dict]) -> str:
    lines = [
        "| run | labels | data seed | epoch | test acc (avg) % | raw % | unsup_loss | g_loss |",
        "|" + "---|" * 8,
    ]
    for s in summaries:
        for seed, rows in s["rows"].items():
            for r in rows:
                cells = [
                    s["task"],
                    s["config"]["labels"],
                    seed,
                    r["epoch"],
                    f"{100 * r['test_accuracy']:.2f}",
                    f"{100 * r['test_accuracy_raw']:.2f}" if "test_accuracy_raw" in r else "–",
                    f"{r['unsup_loss']:.3f}" if "unsup_loss" in r else "–",
                    f"{r['g_loss']:.3f}" if "g_loss" in r else "–",
                ]
                lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def plot(summaries: list[dict], path: pathlib.Path) -> None:
    """Accuracy and real/fake loss per epoch; one color per workdir when there are several (its
    data seeds share it), one per data seed otherwise."""
    fig, (acc, unsup) = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, s in enumerate(summaries):
        for j, (seed, rows) in enumerate(s["all_epochs"].items()):
            epochs = [r["epoch"] for r in rows]
            if len(summaries) > 1:
                seeds = ",".join(map(str, s["all_epochs"]))
                labels = s["config"]["labels"]
                name = f"{pathlib.Path(s['workdir']).name} ({labels} labels, seeds {seeds})"
                style = {"color": colors[i % len(colors)], "label": name if j == 0 else None}
            else:
                style = {"label": f"{s['task']} {s['config']['labels']} labels, data seed {seed}"}
            acc.plot(epochs, [100 * r["test_accuracy"] for r in rows], **style)
            if "unsup_loss" in rows[0]:
                unsup.plot(epochs, [r["unsup_loss"] for r in rows], **style)
    acc.set(xlabel="epoch", ylabel="test accuracy % (parameter average)", title="accuracy")
    unsup.set(
        xlabel="epoch",
        ylabel="unsup_loss",
        title="real/fake loss (0 = discriminator has won)",
        ylim=(0, None),
    )
    acc.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdirs", nargs="+", type=pathlib.Path)
    parser.add_argument("--epochs", default="1,5,10,20,30,40,50,100,200,300")
    parser.add_argument("--name", default=None)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results"))
    args = parser.parse_args()
    summaries = [summarize(w, [int(e) for e in args.epochs.split(",")]) for w in args.workdirs]
    if args.name:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{args.name}.json").write_text(json.dumps(summaries, indent=1) + "\n")
        plot(summaries, args.out / f"{args.name}_curves.png")
    print(json.dumps([{k: v for k, v in s.items() if k != "all_epochs"} for s in summaries]))
    print(markdown(summaries))


if __name__ == "__main__":
    main()
