"""The label sweep end to end (tiny: 2 label counts, 2 data seeds, 2 steps) and its reports."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from gan_jax.cli import main
from gan_jax.sweep import markdown_table, summarize


@pytest.mark.slow
def test_tiny_sweep_writes_csv_table_json_and_figures(mnist_train, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = [
        "sweep",
        "--labels",
        "10,20",
        "--data-seeds",
        "0,1",
        "--out",
        str(out),
        "--steps",
        "2",
        "--batch-size",
        "10",
        "--no-progress",
    ]
    assert main(argv) == 0
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8
    assert {(r["method"], r["labels"], r["data_seed"]) for r in rows} == {
        (m, n, s) for m in ("sgan", "supervised") for n in ("10", "20") for s in ("0", "1")
    }
    assert all(0 <= float(r["test_accuracy"]) <= 1 and r["step"] == "2" for r in rows)
    table = (out / "results.md").read_text()
    # 2 steps of 6,000
    assert "| 10 | " in table and "| 20 | " in table and "(n=2, 0 epochs)" in table
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert set(summary) == {"sgan/10", "sgan/20", "supervised/10", "supervised/20"}
    for name in ("accuracy_vs_labels.png", "samples_over_training.png"):
        with Image.open(out / name) as image:
            assert image.size[0] >= 150 and image.size[1] >= 150
    # each run is an ordinary workdir: evaluate agrees with the CSV
    capsys.readouterr()
    assert main(["evaluate", "--workdir", str(out / "runs" / "sgan_labels20")]) == 0
    result = json.loads(capsys.readouterr().out)
    expected = [
        float(r["test_accuracy"]) for r in rows if r["method"] == "sgan" and r["labels"] == "20"
    ]
    assert result["test_accuracy"] == expected and result["step"] == 2
    # a second run resumes (nothing left to train) and rewrites the same table
    assert main(argv) == 0
    assert (out / "results.md").read_text().split("Machine:")[0] == table.split("Machine:")[0]


def test_summary_and_table_are_hand_checkable():
    rows = [{"method": "sgan", "labels": 100, "test_accuracy": a} for a in (0.99, 0.995)]
    rows += [{"method": "supervised", "labels": 100, "test_accuracy": 0.8}]
    stats = summarize(rows)
    assert stats[("sgan", 100)]["mean"] == 99.25 and stats[("supervised", 100)]["std"] == 0.0
    np.testing.assert_allclose(stats[("sgan", 100)]["std"], np.std([99.0, 99.5], ddof=1))
    line = [row for row in markdown_table(rows).splitlines() if row.startswith("| 100 ")][0]
    assert (
        "99.25 ± 0.35 (n=2)" in line
        and "80.00 ± 0.00 (n=1)" in line
        and "99.07" in line
        and line.endswith("yes |")
    )


def test_table_of_a_dataset_without_published_numbers_has_no_reference_columns():
    rows = [
        {"method": "sgan", "labels": 100, "test_accuracy": 0.8},
        {"method": "supervised", "labels": 100, "test_accuracy": 0.7},
    ]
    header, _, line = markdown_table(rows, "fashion_mnist").splitlines()
    assert header == "| labels | sgan accuracy % | supervised accuracy % |"
    assert line == "| 100 | 80.00 ± 0.00 (n=1) | 70.00 ± 0.00 (n=1) |"


def test_table_cells_carry_the_epochs_and_the_conv_model_gets_the_books_numbers():
    rows = [
        {"method": "sgan", "model": "conv", "labels": 100, "test_accuracy": a, "epochs_trained": e}
        for a, e in ((0.96, 5.0), (0.97, 5.0))
    ]
    rows += [
        {
            "method": "supervised",
            "model": "conv",
            "labels": 100,
            "test_accuracy": 0.7,
            "epochs_trained": 3.0,
        },
        {
            "method": "supervised",
            "model": "conv",
            "labels": 100,
            "test_accuracy": 0.8,
            "epochs_trained": 5.0,
        },
    ]
    header, _, line = markdown_table(rows).splitlines()
    assert (
        header
        == "| labels | sgan accuracy % | supervised accuracy % | book SGAN % | book supervised % |"
    )
    assert (
        line
        == "| 100 | 96.50 ± 0.71 (n=2, 5 epochs) | 75.00 ± 7.07 (n=2, 3–5 epochs) | 89.41 | 69.22 |"
    )
