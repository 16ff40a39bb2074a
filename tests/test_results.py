"""The committed SGAN sweep's tables regenerate from its per-run JSON; the README quotes them."""

import json
import pathlib
import re

from gan_jax.sweep import summarize
from scripts.sweep_report import regenerate

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def test_the_sweep_table_and_csv_regenerate_from_the_committed_json(tmp_path):
    table = regenerate(RESULTS / "sgan_sweep20_cpu.json", tmp_path)
    assert (tmp_path / "sgan_sweep20_cpu.csv").read_bytes() == (
        RESULTS / "sgan_sweep20_cpu.csv"
    ).read_bytes()
    assert table in (RESULTS / "sgan_sweep20_cpu.md").read_text()
    assert (tmp_path / "sgan_sweep20_cpu_accuracy_vs_labels.png").stat().st_size > 0


def _quoted_rows(section: str) -> list[tuple[int, str, str, str, str]]:
    """`(labels, sgan mean, sgan std, supervised mean, supervised std)` of a README table."""
    rows = re.findall(r"^\| (\d+) \| ([\d.]+) ± ([\d.]+) \| ([\d.]+) ± ([\d.]+) \|", section, re.M)
    return [(int(labels), *numbers) for labels, *numbers in rows]


def _assert_quotes(quoted, results_json):
    stats = summarize(json.loads((RESULTS / results_json).read_text())["rows"])
    for labels, *numbers in quoted:
        for method, (mean, std) in zip(
            ("sgan", "supervised"), (numbers[:2], numbers[2:]), strict=True
        ):
            expected = stats[(method, labels)]
            assert (mean, std) == (f"{expected['mean']:.2f}", f"{expected['std']:.2f}"), (
                results_json,
                method,
                labels,
            )


def test_every_number_of_the_readmes_sgan_tables_is_a_committed_sweeps():
    readme = (ROOT / "README.md").read_text()
    conv = readme[
        readme.index("**The seed's table: its own model") : readme.index("**The mlp recipe")
    ]
    start = readme.index("**The mlp recipe")
    mlp = readme[start : readme.index("\n## ", start)]  # to the section's end
    conv_rows, mlp_rows = _quoted_rows(conv), _quoted_rows(mlp)
    assert [row[0] for row in conv_rows] == [50, 100, 1000]
    assert [row[0] for row in mlp_rows] == [100, 20, 50, 100, 1000]
    _assert_quotes(conv_rows, "sgan_conv5_gpu.json")
    _assert_quotes(mlp_rows[:1], "sgan_mlp300_gpu.json")
    _assert_quotes(mlp_rows[1:], "sgan_sweep20_cpu.json")


def test_the_readmes_20_label_figures_are_the_committed_ablations():
    import statistics

    readme = (ROOT / "README.md").read_text()
    start = readme.index("**20 labels: use")
    section = readme[start : readme.index("\n\n", start)]
    rows = json.loads((RESULTS / "sgan_ablation_cpu.json").read_text())
    aligned = [
        r
        for r in rows
        if r["labels"] == 20 and r["method"].endswith(("+ align", "+ align (held-out subsets)"))
    ]
    table, held_out = sorted(aligned, key=lambda r: "held-out" in r["method"])
    assert table["epoch"] == 25 and sorted(table["per_subset"]) == ["0", "1", "2", "3", "4"]
    assert f"{table['mean']:.2f} ± {table['std']:.2f} %** at epoch 25" in section
    at_25 = [curve["25"] for curve in held_out["curves"].values()]
    assert len(at_25) == 3
    assert f"{statistics.mean(at_25):.2f} ± {statistics.stdev(at_25):.2f} % on the held-out" in (
        section.replace("\n", " ")
    )
    recipe = next(
        r for r in rows if r["labels"] == 20 and r["method"] == "recipe" and r["seed"] == 1
    )
    assert f"recipe's {recipe['mean']:.2f} ± {recipe['std']:.2f} % ({recipe['epoch']} epochs)" in (
        section.replace("\n", " ")
    )


def test_a_stopped_runs_workdir_and_finished_sweeps_merge_into_one_regenerable_sweep(
    tmp_path, monkeypatch
):
    import contextlib

    from scripts import sweep_report

    finished = tmp_path / "finished.json"
    finished.write_text(
        json.dumps(
            {
                "rows": [
                    {
                        "method": "supervised",
                        "model": "mlp",
                        "labels": 100,
                        "data_seed": 0,
                        "test_accuracy": 0.8,
                        "epochs_trained": 300.0,
                    }
                ],
                "configs": {"supervised/100": {"dataset": "mnist"}},
                "machine": {"device": "X"},
            }
        )
    )
    stopped = tmp_path / "sgan_labels100"
    stopped.mkdir()
    lines = [
        {"epoch": e, "step": 600 * e, "data_seed": s, "test_accuracy": 0.9 + e / 100 + s / 1000}
        for e in (1, 2)
        for s in (0, 1)
    ]
    stopped.joinpath("metrics.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in lines)
        + json.dumps(
            {"epoch": 3, "step": 1700, "data_seed": 0, "test_accuracy": 0.5, "partial": True}
        )
        + "\n"
    )

    class Store:
        def __init__(self, workdir, create):
            assert workdir == stopped and create is False

        def read_config(self):
            return {"task": "sgan", "model": "mlp", "labels": 100, "dataset": "mnist"}

    monkeypatch.setattr(
        sweep_report, "CheckpointStore", lambda w, create: contextlib.nullcontext(Store(w, create))
    )
    merged = sweep_report.merge([stopped, finished])
    sgan = [r for r in merged["rows"] if r["method"] == "sgan"]
    # the last complete epoch, never the partial row
    assert [(r["data_seed"], r["test_accuracy"], r["epochs_trained"], r["step"]) for r in sgan] == [
        (0, 0.92, 2.0, 1200),
        (1, 0.921, 2.0, 1200),
    ]
    assert merged["machine"] == {"device": "X"} and merged["summary"]["supervised/100"]["n"] == 1
    results = tmp_path / "merged.json"
    results.write_text(json.dumps(merged))
    table = regenerate(results, tmp_path)
    assert (
        "| 100 | 92.05 ± 0.07 (n=2, 2 epochs) | 80.00 ± 0.00 (n=1, 300 epochs) | 99.07 |" in table
    )


def test_the_gpu_tables_regenerate_from_their_committed_json(tmp_path):
    for name in ("sgan_conv5_gpu", "sgan_mlp300_gpu"):
        table = regenerate(RESULTS / f"{name}.json", tmp_path)
        assert table == (RESULTS / f"{name}_table.md").read_text()
        assert (tmp_path / f"{name}.csv").read_bytes() == (RESULTS / f"{name}.csv").read_bytes()


def test_sgan_errors_finds_each_members_own_errors_and_the_overlap_by_subset():
    import numpy as np

    from scripts.sgan_errors import analyse

    labels = np.array([0, 1, 2, 3, 4, 5])
    found = [  # members 0 and 1 share a labeled subset (data seed 7); member 2 has its own
        {
            "workdir": "a",
            "task": "sgan",
            "seed": 0,
            "data_seed": 7,
            "step": 5,
            "predictions": np.array([0, 1, 2, 3, 9, 9]),
        },
        {
            "workdir": "b",
            "task": "sgan",
            "seed": 1,
            "data_seed": 7,
            "step": 5,
            "predictions": np.array([0, 1, 2, 3, 9, 5]),
        },
        {
            "workdir": "a",
            "task": "sgan",
            "seed": 0,
            "data_seed": 8,
            "step": 5,
            "predictions": np.array([1, 1, 2, 3, 4, 5]),
        },
    ]
    result = analyse(found, labels, num_classes=10)
    first, second, third = result["members"]
    assert first["errors"] == 2 and abs(first["test_accuracy"] - 4 / 6) < 1e-12
    assert first["errors_by_class"] == [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    assert first["top_pairs"] == [[4, 9, 1], [5, 9, 1]]
    # image 4 is wrong for members 0 and 1: for member 0, half its others err there: not its own
    assert (first["own_errors"], first["own_top_pairs"]) == (1, [[5, 9, 1]])
    assert (second["own_errors"], third["own_errors"]) == (0, 1)
    assert result["error_overlap_jaccard"]["same_subset"] == {
        "pairs": 1,
        "mean": 0.5,
        "min": 0.5,
        "max": 0.5,
    }
    assert result["error_overlap_jaccard"]["different_subset"]["max"] == 0.0
    assert result["errors_of_every_member"] == 0


def test_sgan_probe_scores_features_by_their_labeled_centroids_and_by_a_linear_probe():
    import numpy as np

    from scripts.sgan_probe import centroid_accuracy, kmeans_purity, probe_accuracy

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    features = np.eye(3)[y] * 5 + rng.normal(size=(120, 3))  # three well separated clusters
    labeled, labeled_y = features[[0, 40, 80]], np.array([0, 1, 2])
    assert centroid_accuracy(labeled, labeled_y, features, y, 3) > 0.95
    # labels misplaced
    assert centroid_accuracy(labeled, np.array([1, 2, 0]), features, y, 3) < 0.05
    assert probe_accuracy(features[::2], y[::2], features[1::2], y[1::2], 3) > 0.95
    assert kmeans_purity(features, y, 3) > 0.95
    assert kmeans_purity(np.eye(3)[y % 2] * 5 + rng.normal(size=(120, 3)), y, 3) < 0.75  # 2 merged
    # labels unrelated to the features: near chance on held-out images
    shuffled = rng.permutation(y)
    assert probe_accuracy(features[::2], shuffled[::2], features[1::2], shuffled[1::2], 3) < 0.6


def test_the_ablation_groups_runs_by_their_options_and_keeps_held_out_subsets_apart(tmp_path):
    from scripts.ablation import group, load_runs, markdown, method

    def run(workdir, seeds, curves, **options):
        config = {"task": "sgan", "labels": 20, "seed": 1, "data_seeds": seeds, **options}
        rows = {
            str(s): [{"epoch": e + 1, "test_accuracy": a} for e, a in enumerate(c)]
            for s, c in zip(seeds, curves, strict=True)
        }
        epochs = max(len(c) for c in curves)
        return {
            "workdir": workdir,
            "config": config,
            "epochs_done": epochs,
            "train_seconds": 10.0 * epochs * len(seeds),
            "all_epochs": rows,
        }

    runs = [
        run("a", [0, 1], [[0.5, 0.8, 0.7], [0.6, 0.9, 0.9]], augment_shift=2),
        run("b", [1], [[0.6]], augment_shift=2),  # subset 1 again, fewer epochs: not kept
        run("c", [5], [[0.4, 0.5, 0.6]], augment_shift=2),  # held out
        run("d", [0], [[0.3, 0.3, 0.3]], pseudo_label_weight=1.0, pseudo_label_align=True),
        run("e", [0], [[0.9]], dataset="fashion_mnist"),  # another dataset: left out
        run("f", [0], [[0.7]], model="conv"),  # another model: left out unless asked for
    ]
    runs[0]["machine"] = {"device": "cpu", "cpu": "Xeon"}
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(runs))
    table = group(load_runs([path], {20}), 2, {0, 1, 2, 3, 4})
    by_method = {r["method"]: r for r in table}
    assert set(by_method) == {"shift 2", "shift 2 (held-out subsets)", "pseudo-labels 1 + align"}
    both = group(load_runs([path], {20}, models=frozenset({"mlp", "conv"})), 2, {0, 1})
    assert {r["method"]: r["per_subset"] for r in both}["conv recipe"] == {0: 70.0}
    fashion = group(load_runs([path], {20}, "fashion_mnist"), 2, {0})
    assert [(r["method"], r["per_subset"]) for r in fashion] == [("recipe", {0: 90.0})]
    # subset 0 of the pseudo-label run never improved; the shift's subset 0 fell 10 from epoch 2
    assert by_method["pseudo-labels 1 + align"]["largest_drop_from_best"] == 0.0
    assert group(load_runs([path], {20}), 3, {0, 1})[1]["largest_drop_from_best"] == 10.0
    shift = by_method["shift 2"]
    assert shift["epoch"] == 2 and shift["per_subset"] == {0: 80.0, 1: 90.0}
    assert abs(shift["mean"] - 85.0) < 1e-9 and abs(shift["std"] - 50**0.5) < 1e-9
    assert by_method["shift 2 (held-out subsets)"]["per_subset"] == {5: 50.0}
    assert shift["seconds_per_member_epoch"] == 10.0
    assert shift["machines"] == ["Xeon", "unknown"]  # run b's seconds count, so its machine too
    text = markdown(table, 2)
    assert "| 20 | shift 2 | 1 | 2 | 0,1 | 85.00 ± 7.07 | 80.0 / 90.0 | 0.0 | 10 |" in text
    assert method({"task": "supervised", "augment_shift": 2}) == "supervised: shift 2"
    # a difference the table has no words for is named, never merged into another row
    assert method({"task": "sgan", "learning_rate": 0.001}) == "learning_rate 0.001"
    assert method({"task": "sgan", "augment_shift": 2, "unlabeled_weight": 0.0}) == (
        "shift 2 + no real/fake term"
    )
    assert method({"task": "sgan", "unlabeled_weight": 0.5}) == "real/fake weight 0.5"
    conv = {"task": "supervised", "model": "conv", "ema_decay": 0.0}  # the conv recipe's own
    assert method(conv) == "conv supervised: recipe"
    assert method({"task": "sgan", "entropy_weight": 0.3, "balance_weight": 0.3}) == (
        "CatGAN pair 0.3"
    )
