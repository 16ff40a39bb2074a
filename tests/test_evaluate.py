"""`gan_jax.evaluate`: sample quality of a GAN's samples, per-epoch evaluation, and the `evaluate`
and `sample` commands on a conditional GAN's workdir."""

import json

import numpy as np
import pytest

from gan_jax.api import load_run, sample_images
from gan_jax.cli import main
from gan_jax.config import CGANConfig, GANConfig
from gan_jax.evaluate import sample_quality
from gan_jax.loop import train
from gan_jax.tasks import GANTask
from gan_jax.workdir import read_rows
from tests.conftest import TINY


def test_sample_quality_is_deterministic_and_bounded(tiny_features, tiny_data):
    task = GANTask(GANConfig(**TINY))
    state = task.init()
    first = sample_quality(task, state, 40)
    assert first == sample_quality(task, state, 40)
    assert set(first) == {"fd", "fd_floor", "inception_score", "confident", "fd_network"}
    assert first["fd_network"] == tiny_features.sha256[:16] and not tiny_features.packaged
    assert (
        first["fd"] > first["fd_floor"] > 0
        and 1 <= first["inception_score"] <= 10
        and 0 <= first["confident"] <= 1
    )


def test_per_epoch_evaluation_and_evaluate_cli(tiny_features, tiny_data, tmp_path, capsys):
    config = CGANConfig(
        epochs=2, eval_every_epoch=True, eval_samples=30, **{**TINY, "num_samples": 10}
    )
    train(config, tmp_path / "run", data=tiny_data, progress=False)
    rows = read_rows(tmp_path / "run")
    assert [r["epoch"] for r in rows] == [1, 2]
    for row in rows:
        assert (
            row["fd"] > 0 and 1 <= row["inception_score"] <= 10 and 0 <= row["digit_accuracy"] <= 1
        )
        assert row["fd_floor"] == tiny_features.fd_floor
    assert main(["evaluate", "--workdir", str(tmp_path / "run"), "--samples", "30"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["task"] == "cgan" and result["step"] == 10 and result["num_samples"] == 30
    assert (
        result["fd"] == pytest.approx(rows[-1]["fd"])
        and result["fd_floor"] == tiny_features.fd_floor
    )
    # asking for a digit: the cGAN draws what it is asked, the images depend on the digit
    task, state = load_run(tmp_path / "run")
    sevens, ones = (sample_images(task, state, 4, seed=3, digit=d) for d in (7, 1))
    assert sevens.shape == (4, 28, 28, 1) and not np.allclose(sevens, ones)
    assert (
        main(
            [
                "sample",
                "--workdir",
                str(tmp_path / "run"),
                "--digit",
                "7",
                "--num",
                "8",
                "--out",
                str(tmp_path / "sevens.png"),
            ]
        )
        == 0
    )
    assert (tmp_path / "sevens.png").exists()
