"""Sizes come from the dataset: every task trains and evaluates on a made-up 3-class dataset, one
`DatasetSpec` added to `gan_jax.data.DATASETS`, with no ten-class assumption left anywhere."""

import numpy as np
import pytest

from gan_jax import data as data_lib
from gan_jax import features
from gan_jax.api import evaluate_run, load_run, sample_images, train_feature_network
from gan_jax.cli import main
from gan_jax.config import CGANConfig, FeatureNetConfig, SGANConfig, SupervisedConfig
from gan_jax.data import DATASETS, DatasetSpec, loading
from gan_jax.errors import ConfigError, DataError
from gan_jax.loop import train
from gan_jax.tasks import make_task
from gan_jax.workdir import read_rows
from tests.conftest import TINY

SPEC = DatasetSpec("three", "Three", (28, 28, 1), 3, {"train": (16,) * 3, "test": (8,) * 3})


@pytest.fixture
def three(monkeypatch, tmp_path):
    """The 'three' dataset registered for the test: 48 training and 24 test images of classes 0..2,
    served by `gan_jax.data.load`; its feature network is cached under `tmp_path`."""
    rng = np.random.default_rng(0)
    splits = {
        split: data_lib.Split(
            rng.integers(0, 256, (n, 28, 28, 1), np.uint8), np.arange(n, dtype=np.int32) % 3
        )
        for split, n in (("train", 48), ("test", 24))
    }
    monkeypatch.setitem(DATASETS, SPEC.name, SPEC)
    real_load = data_lib.load

    def load(name="mnist", split="train", *args, **kwargs):
        return splits[split] if name == SPEC.name else real_load(name, split, *args, **kwargs)

    monkeypatch.setattr(data_lib, "load", load)
    monkeypatch.setattr(loading, "load", load)  # what `load_for` (the loop's) calls
    monkeypatch.setenv("GAN_JAX_FEATURES", str(tmp_path / "features"))
    tiny_network = FeatureNetConfig(epochs=2, batch_size=8, widths=(4,), hidden=8)
    monkeypatch.setattr(features, "FEATURE_NET", tiny_network)
    return splits


@pytest.mark.slow
def test_every_task_trains_and_evaluates_on_a_three_class_dataset(three, tmp_path, capsys):
    train_split, test_split = three["train"], three["test"]

    # the feature network: three logits, trained by the loop, cached, and evaluated
    network = train_feature_network(features.feature_net_config("three"), progress=False)
    logits, _ = network.logits_and_features(test_split.images)
    assert logits.shape == (24, 3) and 0 <= network.test_accuracy <= 1 and network.fd_floor > 0
    report = evaluate_run(features.cache_folder(network.config) / "train", test_split)
    assert report["num_test"] == 24
    assert report["test_accuracy"] == pytest.approx(network.test_accuracy)

    # the cGAN: one-hot and projection of three classes; per-epoch and final sample quality
    config = CGANConfig(dataset="three", epochs=2, eval_every_epoch=True, eval_samples=30, **TINY)
    state = train(config, tmp_path / "cgan", data=train_split, progress=False)
    task = make_task(config)
    assert task.num_classes == 3 and task.image_shape == (28, 28, 1)
    assert state.models["generator"].params["Dense_0"]["kernel"].shape[0] == TINY["noise_dim"] + 3
    assert state.models["discriminator"].params["Embed_0"]["embedding"].shape[0] == 3
    rows = read_rows(tmp_path / "cgan")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(1 <= r["inception_score"] <= 3 for r in rows)
    report = evaluate_run(tmp_path / "cgan", num_samples=30)
    assert report["fd_network"] == network.sha256[:16] and 0 <= report["digit_accuracy"] <= 1
    task, state = load_run(tmp_path / "cgan")
    assert sample_images(task, state, 4, digit=2).shape == (4, 28, 28, 1)
    with pytest.raises(ConfigError, match=r"digit must be an integer 0\.\.2, got 3"):
        sample_images(task, state, 4, digit=3)
    out = str(tmp_path / "x.png")
    assert main(["sample", "--workdir", str(tmp_path / "cgan"), "--digit", "3", "--out", out]) == 2
    assert "expected a digit 0..2, got 3" in capsys.readouterr().err
    assert main(["sample", "--workdir", str(tmp_path / "cgan"), "--class", "2", "--out", out]) == 0
    assert "wrote 64 samples of class 2" in capsys.readouterr().out
    assert (
        main(["sample", "--workdir", str(tmp_path / "cgan"), "--class", "giraffe", "--out", out])
        == 2
    )
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "gan-jax: error: argument --class: this run's classes are 0, 1, 2 (or their indices 0..2), "
        "got 'giraffe'"
    )

    # the SGAN (mlp) and the baseline (conv): three class logits, accuracy on the test split
    for config in (
        SGANConfig(dataset="three", labels=6, batch_size=6, steps=2, noise_dim=8, num_samples=4),
        SupervisedConfig.recipe("conv", dataset="three", labels=6, batch_size=6, steps=2),
    ):
        workdir = tmp_path / config.task
        state = train(config, workdir, data=train_split, test_data=test_split, progress=False)
        last = "WeightNormDense_5" if config.model == "mlp" else "Dense_0"
        assert state.models["classifier"].params[last]["kernel"].shape[-1] == 3
        report = evaluate_run(workdir, test_split)
        assert report["num_test"] == 24 and 0 <= report["test_accuracy"] <= 1
        assert report["test_accuracy"] == read_rows(workdir)[-1]["test_accuracy"]
        grid = make_task(config).sample_grid(state)
        assert grid is None if config.task == "supervised" else grid.shape == (4, 28, 28, 1)


def test_label_checks_read_the_datasets_classes(three, tmp_path):
    with pytest.raises(ConfigError, match="labels must be a positive multiple of 3"):
        SGANConfig(dataset="three", labels=10)
    bad = data_lib.Split(three["train"].images, three["train"].labels + 1)  # classes 1..3
    for config in (
        CGANConfig(dataset="three", **TINY),
        SupervisedConfig(dataset="three", labels=6),
        FeatureNetConfig(dataset="three"),
    ):
        with pytest.raises(
            DataError,
            match=r"needs one label 0\.\.2 per training image; "
            r"got shape \(48,\), values 1\.\.3",
        ):
            make_task(config).feed.arrays(bad)
