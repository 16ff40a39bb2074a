"""Regenerate a committed sweep's table, CSV and bar chart from its per-run JSON, with one command.

    python -m scripts.sweep_report benchmarks/results/sgan_sweep20_cpu.json [--out DIR]

Reads the `results.json` a sweep wrote (its `rows`: one per run, with method, labels, data seed and
test accuracy) and writes into `--out` (default: beside the JSON) `NAME.csv` (the rows, as the
sweep writes them), `NAME_table.md` (mean ± std per label count and method, beside the published
numbers: `gan_jax.sweep.markdown_table`) and `NAME_accuracy_vs_labels.png` (the same means and
standard deviations as bars). Prints the table.
"""

from __future__ import annotations

import argparse
import json
import pathlib

from gan_jax import plots
from gan_jax.sweep import markdown_table, summarize, write_csv


def regenerate(results: pathlib.Path, out: pathlib.Path) -> str:
    """Writes the three files for `results` into `out`; returns the markdown table."""
    stored = json.loads(results.read_text())
    rows = stored["rows"]
    dataset = next(iter(stored.get("configs", {}).values()), {}).get("dataset", "mnist")
    name = results.stem
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / f"{name}.csv")
    table = markdown_table(rows, dataset)
    (out / f"{name}_table.md").write_text(table)
    plots.save_accuracy_bars(out / f"{name}_accuracy_vs_labels.png", summarize(rows))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=pathlib.Path, help="a sweep's results.json")
    parser.add_argument("--out", type=pathlib.Path, help="folder (default: the JSON's)")
    args = parser.parse_args()
    print(regenerate(args.results, args.out or args.results.parent), end="")


if __name__ == "__main__":
    main()
