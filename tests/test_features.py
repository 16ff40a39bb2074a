"""`gan_jax.features`: the Fréchet-distance feature network: its cache and checksums, the packaged
network, and deterministic training."""

import jax
import numpy as np
import pytest

from gan_jax import features


def test_feature_network_is_cached_verified_and_rebuilt_without_retraining(
    tiny_features, monkeypatch
):
    from gan_jax.api import train_feature_network

    net = tiny_features
    assert net.path.exists() and net.path.with_name(net.path.name + ".sha256").exists()
    assert 0.1 < net.test_accuracy <= 1 and net.fd_floor > 0
    logits, feats = net.logits_and_features(np.zeros((3, 28, 28, 1), np.uint8))
    assert logits.shape == (3, 10) and feats.shape == (3, 8) and (feats >= 0).all()
    # A damaged cache file fails its checksum: loading (what an evaluation does) refuses it, naming
    # the fix, and never trains; `train_feature_network` rebuilds it from the finished checkpoints
    # without training again.
    net.path.write_bytes(net.path.read_bytes()[:-10])
    features._load_cached.cache_clear()
    monkeypatch.setattr("gan_jax.steps.make_runner", lambda *a: pytest.fail("trained again"))
    with pytest.raises(
        features.DataError,
        match="no intact feature network .* `gan-jax features --retrain --dataset mnist`",
    ):
        features.load_feature_network()
    rebuilt = train_feature_network(progress=False)
    assert rebuilt.fd_floor == net.fd_floor
    assert jax.tree.all(jax.tree.map(np.array_equal, rebuilt.params, net.params))


@pytest.fixture(scope="module")
def mnist_test():
    from gan_jax.data import load

    return load("mnist", "test", source="offline")


def test_packaged_network_is_verified_and_reproduces_its_stored_accuracy_and_statistics(mnist_test):
    from gan_jax.metrics import feature_statistics

    # the packaged file, never trained here
    net = features.load_feature_network(features.PACKAGED_CONFIG)
    assert net.packaged and net.path == features.PACKAGED and net.sha256 == features.PACKAGED_SHA256
    assert net.test_accuracy > 0.99 and 1.0 < net.fd_floor < 2.0
    logits, feats = net.logits_and_features(mnist_test.images)
    # 5 of 10,000 may flip across CPUs
    assert np.mean(np.argmax(logits, -1) == mnist_test.labels) == pytest.approx(
        net.test_accuracy, abs=5e-4
    )
    # the stored statistics are this code's features of the test split
    mu, sigma = feature_statistics(feats)
    np.testing.assert_allclose(mu, net.test_stats[0], rtol=1e-4, atol=1e-4 * np.abs(mu).max())
    np.testing.assert_allclose(sigma, net.test_stats[1], rtol=1e-3, atol=1e-4 * np.abs(sigma).max())


def test_fashion_mnist_has_its_own_packaged_network_and_evaluations_use_it(tmp_path, monkeypatch):
    from gan_jax.data import load
    from gan_jax.errors import DataError
    from gan_jax.metrics import feature_statistics

    monkeypatch.setenv("GAN_JAX_FEATURES", str(tmp_path))  # no network trained on this machine
    net = features.load_feature_network(features.FeatureNetConfig(dataset="fashion_mnist"))
    path, sha256 = features.PACKAGED_FILES["fashion_mnist"]
    assert net.packaged and net.path == path and net.sha256 == sha256 != features.PACKAGED_SHA256
    assert net.config.dataset == "fashion_mnist" and net.test_accuracy == 0.9026
    assert net.fd_floor == pytest.approx(0.1362, abs=1e-4) and list(tmp_path.iterdir()) == []
    assert path.stat().st_size < 2_000_000  # the size of MNIST's
    try:
        test = load("fashion_mnist", "test", source="offline")
    except DataError as err:  # a machine without apt-get (or its index) cannot fetch the data
        pytest.skip(f"no Fashion-MNIST here: {err}")
    logits, feats = net.logits_and_features(test.images)
    assert np.mean(np.argmax(logits, -1) == test.labels) == pytest.approx(
        net.test_accuracy, abs=5e-4
    )
    mu, _ = feature_statistics(feats)
    np.testing.assert_allclose(mu, net.test_stats[0], rtol=1e-4, atol=1e-4 * np.abs(mu).max())


def test_damaged_packaged_network_is_refused_naming_the_fix(tmp_path, monkeypatch):
    damaged = tmp_path / "feature_net.npz"
    data = bytearray(features.PACKAGED.read_bytes())
    data[len(data) // 2] ^= 1
    damaged.write_bytes(bytes(data))
    with pytest.raises(
        features.DataError,
        match="fails its checksum .* reinstall gan_jax, or use `gan-jax features --retrain`",
    ):
        features._load_packaged(damaged)
    fashion, _ = features.PACKAGED_FILES["fashion_mnist"]
    damaged.write_bytes(fashion.read_bytes()[:-1])
    config = features.FeatureNetConfig(dataset="fashion_mnist")
    with pytest.raises(features.DataError, match="fails its checksum"):
        features._load_packaged(damaged, features.PACKAGED_FILES["fashion_mnist"][1], config)


def test_feature_network_training_is_deterministic(tiny_features, tmp_path, monkeypatch):
    from gan_jax.api import train_feature_network

    monkeypatch.setenv("GAN_JAX_FEATURES", str(tmp_path))  # a fresh cache: train again from scratch
    again = train_feature_network(progress=False)
    assert again.path != tiny_features.path
    assert jax.tree.all(jax.tree.map(np.array_equal, again.params, tiny_features.params))
    np.testing.assert_array_equal(again.test_stats[1], tiny_features.test_stats[1])
