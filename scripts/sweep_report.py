"""Regenerate a committed sweep's table, CSV and bar chart from its per-run JSON, with one command.

    python -m scripts.sweep_report benchmarks/results/sgan_sweep20_cpu.json [--out DIR]

Reads the `results.json` a sweep wrote (its `rows`: one per run, with method, labels, data seed,
test accuracy and epochs trained) and writes into `--out` (default: beside the JSON) `NAME.csv`
(the rows, as the sweep writes them), `NAME_table.md` (mean ± std per label count and method,
beside the published numbers: `gan_jax.sweep.markdown_table`) and `NAME_accuracy_vs_labels.png`
(the same means and standard deviations as bars). Prints the table.

Several sources merge into one sweep, named by `--name` (NAME.json holds the merged rows, so the
one-argument form above regenerates everything from it afterwards):

    python -m scripts.sweep_report OUT1/results.json OUT2/results.json RUNS/sgan_labels100 \\
        --name sgan_mlp300_gpu --out benchmarks/results

A source that is a workdir (a run stopped before its sweep wrote results.json) gives one row per
data seed from its last complete epoch in metrics.jsonl (the per-epoch test accuracy, of the same
parameters the sweep evaluates), with the epochs it reached.
"""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import Any

from gan_jax import plots
from gan_jax.checkpoint import CheckpointStore
from gan_jax.sweep import markdown_table, summarize, write_csv
from gan_jax.workdir import read_rows


def workdir_rows(workdir: pathlib.Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """`(rows, config)` of an SGAN or supervised workdir: per data seed its last complete epoch."""
    with CheckpointStore(workdir, create=False) as store:
        config = store.read_config()
    last: dict[int, dict[str, Any]] = {}
    for row in read_rows(workdir):
        if not row.get("partial") and "test_accuracy" in row:
            last[row["data_seed"]] = row
    rows = [
        {
            "method": config["task"],
            "model": config["model"],
            "labels": config["labels"],
            "data_seed": seed,
            "test_accuracy": row["test_accuracy"],
            "test_error_pct": round(100 * (1 - row["test_accuracy"]), 4),
            "step": row["step"],
            "epochs_trained": float(row["epoch"]),
        }
        for seed, row in sorted(last.items())
    ]
    return rows, config


def merge(sources: list[pathlib.Path]) -> dict[str, Any]:
    """One results.json-shaped dict from sweeps' results.json files and stopped runs' workdirs."""
    merged: dict[str, Any] = {"rows": [], "configs": {}, "sources": []}
    for source in sources:
        if source.is_dir():
            rows, config = workdir_rows(source)
            merged["configs"][f"{config['task']}/{config['labels']}"] = config
            merged["sources"].append({"workdir": source.name, "stopped_early": True})
        else:
            stored = json.loads(source.read_text())
            rows = stored["rows"]
            merged["configs"].update(stored.get("configs", {}))
            merged.setdefault("machine", stored.get("machine"))
            merged["sources"].append(
                {"results": source.parent.name, "seconds": stored.get("seconds")}
            )
        merged["rows"].extend(rows)
    merged["summary"] = {f"{m}/{n}": v for (m, n), v in summarize(merged["rows"]).items()}
    return merged


def regenerate(results: pathlib.Path, out: pathlib.Path, name: str | None = None) -> str:
    """Writes the three files for `results` (a results.json) into `out`; returns the table."""
    stored = json.loads(results.read_text())
    rows = stored["rows"]
    configs: list[dict] = list(stored.get("configs", {}).values())
    dataset = configs[0].get("dataset", "mnist") if configs else "mnist"
    name = name or results.stem
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / f"{name}.csv")
    table = markdown_table(rows, dataset)
    (out / f"{name}_table.md").write_text(table)
    plots.save_accuracy_bars(out / f"{name}_accuracy_vs_labels.png", summarize(rows))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "sources", type=pathlib.Path, nargs="+", help="results.json files and/or run workdirs"
    )
    parser.add_argument("--out", type=pathlib.Path, help="folder (default: the first source's)")
    parser.add_argument("--name", help="the merged sweep's name (needed for several sources)")
    args = parser.parse_args()
    if len(args.sources) == 1 and args.sources[0].is_file() and not args.name:
        results = args.sources[0]
    else:
        if not args.name:
            parser.error("several sources (or a workdir) need --name NAME for the merged sweep")
        out = args.out or args.sources[0].parent
        out.mkdir(parents=True, exist_ok=True)
        results = out / f"{args.name}.json"
        results.write_text(json.dumps(merge(args.sources), indent=1) + "\n")
    print(regenerate(results, args.out or results.parent), end="")


if __name__ == "__main__":
    main()
