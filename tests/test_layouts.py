"""The data layouts people have (issue 35 item 3) and a two-class classifier end to end (item 7):
Keras's and MedMNIST's .npz, a flat folder labelled by labels.csv, and the metrics users report."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from gan_jax import data as data_lib
from gan_jax.errors import DataError
from gan_jax.metrics import classification_report
from tests.conftest import run_cli


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_JAX_DATA", str(tmp_path / "cache"))


def _images(n, seed=0, size=28):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), np.uint8)


def test_keras_npz_layout_reads_as_train_and_test(tmp_path):
    path = tmp_path / "mnist.npz"  # as ~/.keras/datasets/mnist.npz: [N, 28, 28] uint8, labels [N]
    np.savez(
        path,
        x_train=_images(12),
        y_train=np.arange(12, dtype=np.uint8) % 3,
        x_test=_images(6, 1),
        y_test=np.arange(6, dtype=np.uint8) % 3,
    )
    train = data_lib.load(f"npz:{path}", "train")
    test = data_lib.load(f"npz:{path}", "test")
    assert train.images.shape == (12, 28, 28, 1) and test.images.shape == (6, 28, 28, 1)
    np.testing.assert_array_equal(train.labels, np.arange(12) % 3)
    np.testing.assert_array_equal(test.images[..., 0], _images(6, 1))


def test_medmnist_npz_layout_flattens_n_by_1_labels_and_keeps_val(tmp_path):
    path = tmp_path / "pneumoniamnist.npz"
    np.savez(
        path,
        train_images=_images(10),
        train_labels=(np.arange(10) % 2)[:, None],
        val_images=_images(4, 1),
        val_labels=np.array([[0], [1], [1], [0]]),
        test_images=_images(6, 2),
        test_labels=(np.arange(6) % 2)[:, None],
    )
    train = data_lib.load(f"npz:{path}", "train")
    np.testing.assert_array_equal(train.labels, np.arange(10) % 2)
    assert train.labels.dtype == np.int32
    np.testing.assert_array_equal(data_lib.load(f"npz:{path}", "test").labels, np.arange(6) % 2)
    from gan_jax.data.sources import npz

    arrays = npz.read(path)
    np.testing.assert_array_equal(arrays["val_labels"], [0, 1, 1, 0])
    assert arrays["val_images"].shape == (4, 28, 28, 1)


def test_an_npz_in_no_known_layout_is_one_line_naming_the_layouts(tmp_path):
    path = tmp_path / "odd.npz"
    np.savez(path, images=_images(2))
    with pytest.raises(
        DataError,
        match=r"has arrays \['images'\], which match no layout it reads "
        r"\(gan_jax: x, y, .*; Keras: x_train, y_train, x_test, y_test; "
        r"MedMNIST: train_images, .*\); rename them",
    ):
        data_lib.load(f"npz:{path}", "train")


def _csv_folder(root, labels):
    root.mkdir()
    for i, _ in enumerate(labels):
        Image.fromarray(_images(1, i)[0]).save(root / f"scan_{i:02d}.png")
    with (root / "labels.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["filename", "label"])
        writer.writerows([f"scan_{i:02d}.png", label] for i, label in enumerate(labels))
    return root


def test_flat_folder_with_labels_csv_takes_names_or_integers(tmp_path):
    names = ["normal", "pneumonia", "normal", "normal", "pneumonia", "normal"]
    named = data_lib.load(f"folder:{_csv_folder(tmp_path / 'named', names)}", "train")
    # classes in sorted name order; images grouped by class
    np.testing.assert_array_equal(named.labels, [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(named.images[4, ..., 0], _images(1, 1)[0])  # scan_01: pneumonia
    assert data_lib.describe(f"folder:{tmp_path / 'named'}").class_names == ("normal", "pneumonia")
    numbered = data_lib.load(f"folder:{_csv_folder(tmp_path / 'numbered', [2, 0, 1, 2])}", "train")
    np.testing.assert_array_equal(numbered.labels, [0, 1, 2, 2])
    np.testing.assert_array_equal(numbered.images[0, ..., 0], _images(1, 1)[0])  # scan_01: class 0


def test_labels_csv_that_misses_an_image_is_one_line(tmp_path):
    root = _csv_folder(tmp_path / "scans", ["a", "b"])
    Image.fromarray(_images(1, 9)[0]).save(root / "extra.png")
    with pytest.raises(
        DataError,
        match=r"labels.csv has no row for extra.png \(1 images without one\); "
        "give one filename,label row per image",
    ):
        data_lib.load(f"folder:{root}", "train")


def test_classification_report_matches_hand_counts():
    labels = np.array([0, 0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3], [0.1, 0.9]])
    report = classification_report(labels, probs, ["neg", "pos"])
    assert report["confusion"] == [[1, 1], [1, 2]]
    assert report["accuracy"] == pytest.approx(3 / 5)
    assert report["per_class_accuracy"] == pytest.approx([1 / 2, 2 / 3])
    # F1 per class: neg 2·(1/2·1/2)/(1/2+1/2) = 1/2; pos precision 2/3, recall 2/3 → 2/3
    assert report["macro_f1"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    # AUC: of the 6 (pos, neg) pairs, pos scores above neg in 5 (0.8, 0.9 beat both; 0.3 beats 0.1)
    assert report["roc_auc"] == pytest.approx(5 / 6)


def test_two_class_medmnist_layout_trains_evaluates_predicts_and_exports(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = np.arange(80) % 2
    images = rng.integers(0, 120, (80, 28, 28), np.uint8) + (labels * 100)[:, None, None].astype(
        np.uint8
    )
    path = tmp_path / "twoclass.npz"
    np.savez(
        path,
        train_images=images[:60],
        train_labels=labels[:60, None],
        test_images=images[60:],
        test_labels=labels[60:, None],
    )
    workdir = tmp_path / "run"
    assert (
        run_cli(
            [
                "train",
                "supervised",
                "--dataset",
                f"npz:{path}",
                "--labels",
                "20",
                "--model",
                "mlp",
                "--batch-size",
                "10",
                "--steps",
                "12",
                "--workdir",
                workdir,
                "--no-progress",
                "--no-tensorboard",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert run_cli(["evaluate", "--workdir", workdir]) == 0
    report = json.loads(capsys.readouterr().out)["predict"]
    assert report["class_names"] == ["0", "1"] and len(report["confusion"]) == 2
    assert sum(map(sum, report["confusion"])) == 20 and 0.0 <= report["roc_auc"] <= 1.0
    assert report["accuracy"] > 0.9  # bright against dark images: separable in a few steps
    assert (workdir / "confusion.png").stat().st_size > 0
    out = tmp_path / "predictions.csv"
    assert run_cli(["predict", "--workdir", workdir, "--dataset", f"npz:{path}", "--out", out]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 20 and list(rows[0])[3:] == ["p_0", "p_1"]
    assert (
        np.mean([row["class"] == str(y) for row, y in zip(rows, labels[60:], strict=True)])
        == report["accuracy"]
    )
    assert run_cli(["export", "--workdir", workdir, "--out", tmp_path / "clf.jax"]) == 0
    assert json.loads((tmp_path / "clf.jax.json").read_text())["class_names"] == ["0", "1"]


def test_a_labelled_pool_without_test_split_gets_a_fixed_stratified_one(tmp_path, caplog):
    from gan_jax import SGANConfig, SupervisedConfig, evaluate_run, train

    caplog.set_level("INFO", logger="gan_jax")
    path = tmp_path / "pool.npz"
    # image i has pixel value i
    images = np.stack([np.full((28, 28), i, np.uint8) for i in range(100)])
    np.savez(path, x=images, y=np.arange(100) % 5)
    name = f"npz:{path}"
    train_split, test_split = (data_lib.load(name, s, test_fraction=0.2) for s in ("train", "test"))
    held = sorted(test_split.images[:, 0, 0, 0].tolist())
    # 20 % of each class
    assert len(held) == 20 and np.bincount(test_split.labels).tolist() == [4] * 5
    assert sorted(held + train_split.images[:, 0, 0, 0].tolist()) == list(range(100))
    assert (
        "held out 20 of its 100 labelled training images as one (--test-fraction 0.2" in caplog.text
    )
    from gan_jax.data import user

    user._READ.clear()  # read again, as another process would: the same images
    assert (
        sorted(data_lib.load(name, "test", test_fraction=0.2).images[:, 0, 0, 0].tolist()) == held
    )
    assert len(data_lib.load(name, "test", test_fraction=0.1).images) == 10
    assert SGANConfig().test_fraction == 0.1  # a classifier's default; generators hold out none
    config = SupervisedConfig(dataset=name, labels=10, batch_size=10, steps=1, test_fraction=0.2)
    train(config, tmp_path / "run", progress=False)
    assert evaluate_run(tmp_path / "run")["num_test"] == 20  # evaluate reuses the run's split


def test_a_stray_label_or_a_gap_is_refused_with_the_counts_unless_allowed(tmp_path, capsys):
    from gan_jax import SupervisedConfig, train

    y = np.arange(500) % 10
    y[7] = 10  # one image labelled 10 in a 0-9 set, no class_names: an 11th class of one image
    stray, gap = tmp_path / "stray.npz", tmp_path / "gap.npz"
    np.savez(stray, x=_images(500), y=y)
    np.savez(gap, x=_images(500), y=np.where(np.arange(500) % 10 == 3, 4, np.arange(500) % 10))
    args = ["--batch-size", "10", "--steps", "1", "--no-progress", "--no-tensorboard"]
    for path, labels, message in (
        (
            stray,
            11,
            "class 10 has 1 image(s) against a median of 45 (training images per class 0..10: "
            "45 45 45 45 45 45 45 44 45 45 1); a stray or missing label? Fix the labels (or the "
            "class names), or pass --allow-rare-classes to train on them as they are",
        ),
        (
            gap,
            20,
            "class 3 has no images (training images per class 0..9: 45 45 45 0 90 45 45 45 45 45)",
        ),
    ):
        workdir = tmp_path / path.stem
        assert (
            run_cli(
                [
                    "train",
                    "supervised",
                    "--dataset",
                    f"npz:{path}",
                    "--labels",
                    labels,
                    *args,
                    "--workdir",
                    workdir,
                ]
            )
            == 2
        )
        assert message in capsys.readouterr().err.strip().splitlines()[-1]
        assert not workdir.exists()
    config = SupervisedConfig(
        dataset=f"npz:{stray}", labels=11, batch_size=10, steps=1, allow_rare_classes=True
    )
    assert int(train(config, tmp_path / "allowed", progress=False).step) == 1


def test_a_validation_split_is_scored_each_epoch_and_its_best_classifier_kept(tmp_path, capsys):
    from gan_jax import best
    from gan_jax.workdir import read_rows

    rng = np.random.default_rng(0)
    labels = np.arange(300) % 3
    images = rng.integers(0, 100, (300, 28, 28), np.uint8) + (labels * 70)[:, None, None].astype(
        np.uint8
    )
    path = tmp_path / "pool.npz"
    np.savez(path, x=images, y=labels)
    workdir = tmp_path / "run"
    assert (
        run_cli(
            [
                "train",
                "supervised",
                "--dataset",
                f"npz:{path}",
                "--labels",
                "9",
                "--model",
                "mlp",
                "--batch-size",
                "30",
                "--epochs",
                "3",
                "--val-fraction",
                "0.2",
                "--learning-rate",
                "0.01",
                "--workdir",
                workdir,
                "--no-progress",
                "--no-tensorboard",
            ]
        )
        == 0
    )
    rows = read_rows(workdir)
    assert [row["epoch"] for row in rows] == [1, 2, 3] and all(
        0 <= row["val_accuracy"] <= 1 for row in rows
    )
    kept = best.read_record(workdir)
    best_row = max(rows, key=lambda row: row["val_accuracy"])  # the first of equals is kept
    assert kept["val_accuracy"] == best_row["val_accuracy"] and kept["epoch"] == best_row["epoch"]
    capsys.readouterr()
    assert run_cli(["evaluate", "--workdir", workdir, "--checkpoint", "best"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["step"] == kept["step"] and report["test_accuracy"] == best_row["test_accuracy"]
    # 300 images: 30 held out for test (0.1), then 54 of the other 270 for validation (0.2)
    assert (
        report["num_test"] == 30
        and len(data_lib.load(f"npz:{path}", "val", test_fraction=0.1, val_fraction=0.2).images)
        == 54
    )
    plain = tmp_path / "plain"
    assert (
        run_cli(
            [
                "train",
                "supervised",
                "--dataset",
                f"npz:{path}",
                "--labels",
                "9",
                "--model",
                "mlp",
                "--batch-size",
                "30",
                "--steps",
                "1",
                "--workdir",
                plain,
                "--no-progress",
                "--no-tensorboard",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        run_cli(["predict", "--workdir", plain, "--dataset", f"npz:{path}", "--checkpoint", "best"])
        == 2
    )
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"gan-jax: error: {plain} has no best checkpoint: one is kept at each complete epoch's end "
        "when a classifier trains with a validation split (--val-fraction F, or a dataset's own "
        "val split); use the latest"
    )


def test_best_keeps_a_better_classifier_only_and_restores_it_with_its_step(tmp_path):
    import jax

    from gan_jax import SupervisedConfig, best, train

    rng = np.random.default_rng(0)
    state = train(
        SupervisedConfig(labels=10, batch_size=10, steps=2, model="mlp"),
        tmp_path / "run",
        data=data_lib.Split(rng.integers(0, 256, (40, 28, 28, 1), np.uint8), np.arange(40) % 10),
        test_data=data_lib.Split(rng.integers(0, 256, (10, 28, 28, 1), np.uint8), np.arange(10)),
        progress=False,
    )
    shifted = jax.tree.map(lambda x: x + 1.0, state.models["classifier"].params)
    earlier = state.replace(
        step=jax.numpy.asarray(1, jax.numpy.int32),
        models={"classifier": state.models["classifier"].replace(params=shifted)},
    )
    assert best.record(tmp_path, earlier, 0.9, epoch=1)
    assert not best.record(tmp_path, state, 0.5, epoch=2)  # worse: the earlier one stays
    assert best.read_record(tmp_path) == {"step": 1, "epoch": 1, "val_accuracy": 0.9}
    restored = best.restore(tmp_path, state)
    assert int(restored.step) == 1
    for a, b in zip(
        jax.tree.leaves(restored.models["classifier"].params), jax.tree.leaves(shifted), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert best.record(tmp_path, state, 0.95, epoch=2) and best.read_record(tmp_path)["step"] == 2
