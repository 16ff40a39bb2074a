"""The feature network cache, sample-quality evaluation of GAN workdirs, and the conditional GAN."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import features
from gan_jax.api import evaluate_run, load_run, sample_images
from gan_jax.cli import main
from gan_jax.config import CGANConfig, GANConfig
from gan_jax.evaluate import sample_quality
from gan_jax.loop import read_metrics, train
from gan_jax.tasks import CGANTask, GANTask
from gan_jax.tasks.feature_net import random_shift
from tests.conftest import TINY


def test_feature_network_is_cached_verified_and_rebuilt_without_retraining(tiny_features, monkeypatch):
    from gan_jax.api import train_feature_network

    net = tiny_features
    assert net.path.exists() and net.path.with_name(net.path.name + ".sha256").exists()
    assert 0.1 < net.test_accuracy <= 1 and net.fd_floor > 0
    logits, feats = net.logits_and_features(np.zeros((3, 28, 28, 1), np.uint8))
    assert logits.shape == (3, 10) and feats.shape == (3, 8) and (feats >= 0).all()
    # A damaged cache file fails its checksum: loading (what an evaluation does) refuses it, naming the fix,
    # and never trains; `train_feature_network` rebuilds it from the finished checkpoints without training again.
    net.path.write_bytes(net.path.read_bytes()[:-10])
    features._load_cached.cache_clear()
    monkeypatch.setattr("gan_jax.steps.make_runner", lambda *a: pytest.fail("trained again"))
    with pytest.raises(features.DataError, match="no intact feature network .* `gan-jax features --retrain --dataset mnist`"):
        features.load_feature_network()
    rebuilt = train_feature_network(progress=False)
    assert rebuilt.fd_floor == net.fd_floor
    assert jax.tree.all(jax.tree.map(np.array_equal, rebuilt.params, net.params))


@pytest.fixture(scope="module")
def mnist_test():
    from gan_jax.data import load_mnist

    return load_mnist("test", source="offline")


def test_packaged_network_is_verified_and_reproduces_its_stored_accuracy_and_statistics(mnist_test):
    from gan_jax.metrics import feature_statistics

    net = features.load_feature_network(features.PACKAGED_CONFIG)  # the packaged file, never trained here
    assert net.packaged and net.path == features.PACKAGED and net.sha256 == features.PACKAGED_SHA256
    assert net.test_accuracy > 0.99 and 1.0 < net.fd_floor < 2.0
    logits, feats = net.logits_and_features(mnist_test.images)
    assert np.mean(np.argmax(logits, -1) == mnist_test.labels) == pytest.approx(net.test_accuracy, abs=5e-4)  # 5 of 10,000 may flip across CPUs
    mu, sigma = feature_statistics(feats)  # the stored statistics are this code's features of the test split
    np.testing.assert_allclose(mu, net.test_stats[0], rtol=1e-4, atol=1e-4 * np.abs(mu).max())
    np.testing.assert_allclose(sigma, net.test_stats[1], rtol=1e-3, atol=1e-4 * np.abs(sigma).max())


def test_damaged_packaged_network_is_refused_naming_the_fix(tmp_path, monkeypatch):
    damaged = tmp_path / "feature_net.npz"
    data = bytearray(features.PACKAGED.read_bytes())
    data[len(data) // 2] ^= 1
    damaged.write_bytes(bytes(data))
    with pytest.raises(features.DataError, match="fails its checksum .* reinstall gan_jax, or use `gan-jax "
                                                 "features --retrain`"):
        features._load_packaged(damaged)


def test_feature_network_training_is_deterministic(tiny_features, tmp_path, monkeypatch):
    from gan_jax.api import train_feature_network

    monkeypatch.setenv("GAN_JAX_FEATURES", str(tmp_path))  # a fresh cache: train again from scratch
    again = train_feature_network(progress=False)
    assert again.path != tiny_features.path
    assert jax.tree.all(jax.tree.map(np.array_equal, again.params, tiny_features.params))
    np.testing.assert_array_equal(again.test_stats[1], tiny_features.test_stats[1])


def test_random_shift_moves_pixels_within_bounds():
    image = jnp.zeros((1, 28, 28, 1), jnp.uint8).at[0, 14, 14, 0].set(255)
    shifted = random_shift(jnp.repeat(image, 64, 0), 2, jax.random.PRNGKey(0))
    rows, cols = np.nonzero(np.asarray(shifted)[..., 0].max(axis=0))
    assert set(rows) == set(range(12, 17)) and set(cols) == set(range(12, 17))  # every offset in [-2, 2] drawn
    assert (np.asarray(shifted).reshape(64, -1).sum(-1) == 255).all()  # one pixel moved, none lost


def test_sample_quality_is_deterministic_and_bounded(tiny_features, tiny_data):
    task = GANTask(GANConfig(**TINY))
    state = task.init()
    first = sample_quality(task, state, 40)
    assert first == sample_quality(task, state, 40)
    assert set(first) == {"fd", "fd_floor", "inception_score", "confident", "fd_network"}
    assert first["fd_network"] == tiny_features.sha256[:16] and not tiny_features.packaged
    assert first["fd"] > first["fd_floor"] > 0 and 1 <= first["inception_score"] <= 10 and 0 <= first["confident"] <= 1


def test_per_epoch_evaluation_and_evaluate_cli(tiny_features, tiny_data, tmp_path, capsys):
    config = CGANConfig(epochs=2, eval_every_epoch=True, eval_samples=30, **{**TINY, "num_samples": 10})
    train(config, tmp_path / "run", data=tiny_data, progress=False)
    rows = read_metrics(tmp_path / "run")
    assert [r["epoch"] for r in rows] == [1, 2]
    for row in rows:
        assert row["fd"] > 0 and 1 <= row["inception_score"] <= 10 and 0 <= row["digit_accuracy"] <= 1
        assert row["fd_floor"] == tiny_features.fd_floor
    assert main(["evaluate", "--workdir", str(tmp_path / "run"), "--samples", "30"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["task"] == "cgan" and result["step"] == 10 and result["num_samples"] == 30
    assert result["fd"] == pytest.approx(rows[-1]["fd"]) and result["fd_floor"] == tiny_features.fd_floor
    # asking for a digit: the cGAN draws what it is asked, the images depend on the digit
    task, state = load_run(tmp_path / "run")
    sevens, ones = (sample_images(task, state, 4, seed=3, digit=d) for d in (7, 1))
    assert sevens.shape == (4, 28, 28, 1) and not np.allclose(sevens, ones)
    assert main(["sample", "--workdir", str(tmp_path / "run"), "--digit", "7", "--num", "8",
                 "--out", str(tmp_path / "sevens.png")]) == 0
    assert (tmp_path / "sevens.png").exists()


def test_cgan_step_conditions_both_models_and_learns_from_labels():
    task = CGANTask(CGANConfig(**TINY))
    state = task.init()
    d, g = task.discriminator, state.models["discriminator"]
    images = jax.random.uniform(jax.random.PRNGKey(1), (4, 28, 28, 1), minval=-1, maxval=1)
    logits = [d.apply({"params": g.params}, images, train=False, labels=jnp.full(4, k)) for k in (0, 1)]
    assert logits[0].shape == (4,) and not np.allclose(logits[0], logits[1])  # the projection reads the digit
    real = jnp.zeros((8, 28, 28, 1), jnp.uint8)
    digits = jnp.arange(8, dtype=jnp.int32)
    models, metrics = jax.jit(task.train_step)(state.models, real, jax.random.PRNGKey(0), digits)
    assert np.isfinite(metrics["d_loss"]) and np.isfinite(metrics["g_loss"])
    # the real digits reach the discriminator's gradient: other digits, other update
    other, _ = jax.jit(task.train_step)(state.models, real, jax.random.PRNGKey(0), (digits + 1) % 10)
    embed = lambda m: m["discriminator"].params["Embed_0"]["embedding"]
    assert not np.allclose(embed(models), embed(other))


def test_generator_ema_is_what_samples_and_starts_at_the_raw_parameters():
    task = GANTask(GANConfig(g_ema_decay=0.9, **TINY))
    state = task.init()
    z = task.fixed_noise()
    np.testing.assert_array_equal(task.sample(state, z), GANTask(GANConfig(**TINY)).sample(state, z))  # step 0
    models, _ = jax.jit(task.train_step)(state.models, jnp.zeros((8, 28, 28, 1), jnp.uint8), jax.random.PRNGKey(0))
    state = state.replace(step=state.step + 1, models=models)
    g = models["generator"]
    # after one update the bias-corrected EMA (1-0.9)·p / (1-0.9) equals the new parameters
    assert jax.tree.all(jax.tree.map(lambda a, p: np.allclose(a, p, atol=1e-6), task.generator_params(state), g.params))
    with pytest.raises(Exception, match="unconditional"):
        task.sample(state, z, digits=np.zeros(len(z), np.int32))
