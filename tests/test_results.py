"""The committed SGAN sweep's tables regenerate from its per-run JSON, and the README quotes them."""

import json
import pathlib
import re

from gan_jax.sweep import summarize
from scripts.sweep_report import regenerate

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def test_the_sweep_table_and_csv_regenerate_from_the_committed_json(tmp_path):
    table = regenerate(RESULTS / "sgan_sweep20_cpu.json", tmp_path)
    assert (tmp_path / "sgan_sweep20_cpu.csv").read_bytes() == (RESULTS / "sgan_sweep20_cpu.csv").read_bytes()
    assert table in (RESULTS / "sgan_sweep20_cpu.md").read_text()
    assert (tmp_path / "sgan_sweep20_cpu_accuracy_vs_labels.png").stat().st_size > 0


def test_every_number_of_the_readmes_sgan_table_is_the_committed_sweeps():
    rows = json.loads((RESULTS / "sgan_sweep20_cpu.json").read_text())["rows"]
    stats = summarize(rows)
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**The seed's table at 20 epochs**"):]
    quoted = re.findall(r"^\| (\d+) \| ([\d.]+) ± ([\d.]+) \| ([\d.]+) ± ([\d.]+) \|", section, re.M)
    assert [int(q[0]) for q in quoted] == [20, 50, 100, 1000]
    for labels, *numbers in quoted:
        for method, (mean, std) in zip(("sgan", "supervised"), (numbers[:2], numbers[2:])):
            expected = stats[(method, int(labels))]
            assert (mean, std) == (f"{expected['mean']:.2f}", f"{expected['std']:.2f}"), (method, labels)
