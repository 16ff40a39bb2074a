"""Datasets as data: the spec table, Fashion-MNIST's offline route (a made-up .deb), CIFAR-10 via
TFDS (mock data), and a GAN sized for 32×32×3 images."""

import dataclasses
import gzip
import hashlib
import io
import json
import subprocess
import tarfile

import numpy as np
import pytest

from gan_jax import GANConfig, SGANConfig, Split, SupervisedConfig, train
from gan_jax import data as data_lib
from gan_jax.data import DATASETS, dataset, download
from gan_jax.data.sources.deb import read_idx
from gan_jax.errors import ConfigError, DataError
from gan_jax.plots import image_grid
from gan_jax.tasks import make_task


def test_every_dataset_spec_is_consistent():
    for name, spec in DATASETS.items():
        assert spec.name == name and spec.num_classes == 10 and len(spec.shape) == 3
        assert all(len(counts) == spec.num_classes for counts in spec.class_counts.values())
        assert spec.offline is not None or spec.offline_hint
        assert len(spec.class_names) in (0, spec.num_classes)
    # predict's CSV, evaluate's confusion and `sample --class` name the classes as the data does
    assert DATASETS["fashion_mnist"].class_names[6] == "Shirt"
    assert DATASETS["cifar10"].class_names[0] == "airplane"
    assert DATASETS["mnist"].cache_file == "mnist.npz"  # the cache MNIST always had
    assert DATASETS["fashion_mnist"].cache_file == "fashion_mnist.npz"
    with pytest.raises(
        ConfigError, match="dataset must be one of mnist, fashion_mnist, cifar10, got 'svhn'"
    ):
        dataset("svhn")


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_idx_files_decode_and_bad_ones_are_refused():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_idx(_idx(images)), images)
    with pytest.raises(DataError, match="idx file holds 23 bytes for shape"):
        read_idx(_idx(images)[:-1])
    with pytest.raises(DataError, match="not an idx file"):
        read_idx(b"PK\x03\x04")


def _fake_fashion(tmp_path, monkeypatch, per_class=(3, 2)):
    """A fake .deb laid out like Debian's dataset-fashion-mnist, with the checksums it implies."""
    rng = np.random.default_rng(0)
    files, arrays, pinned = {}, {}, {}
    for split, n in zip(("train", "test"), per_class, strict=True):
        labels = np.repeat(np.arange(10), n).astype(np.uint8)
        images = rng.integers(0, 256, (10 * n, 28, 28), dtype=np.uint8)
        (images_name, _), (labels_name, _) = DATASETS["fashion_mnist"].offline.files[split]
        for name, array in ((images_name, images), (labels_name, labels)):
            files[name] = gzip.compress(_idx(array), mtime=0)
        pinned[split] = tuple(
            (name, hashlib.sha256(files[name]).hexdigest()) for name in (images_name, labels_name)
        )
        arrays[split] = (images, labels)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w:xz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(DATASETS["fashion_mnist"].offline.folder + name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    members = {
        "debian-binary": b"2.0\n",
        "control.tar.xz": b"",
        "data.tar.xz": tar_bytes.getvalue(),
    }
    deb = b"!<arch>\n" + b"".join(
        f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n".encode()
        + body
        + (b"\n" if len(body) % 2 else b"")
        for name, body in members.items()
    )
    (tmp_path / "dataset-fashion-mnist.deb").write_bytes(deb)
    monkeypatch.setenv("GAN_JAX_DATA", str(tmp_path))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    spec = DATASETS["fashion_mnist"]
    offline = dataclasses.replace(
        spec.offline, sha256=hashlib.sha256(deb).hexdigest(), files=pinned
    )
    counts = {split: (n,) * 10 for split, n in zip(("train", "test"), per_class, strict=True)}
    spec = dataclasses.replace(spec, offline=offline, class_counts=counts)
    monkeypatch.setitem(DATASETS, "fashion_mnist", spec)
    return arrays


def test_fashion_mnist_offline_route_reads_the_debian_package(tmp_path, monkeypatch):
    arrays = _fake_fashion(tmp_path, monkeypatch)
    train_split = data_lib.load("fashion_mnist", "train", "offline")
    np.testing.assert_array_equal(train_split.images[..., 0], arrays["train"][0])
    np.testing.assert_array_equal(train_split.labels, arrays["train"][1])
    assert train_split.labels.dtype == np.int32 and (tmp_path / "fashion_mnist.npz").exists()
    (tmp_path / "dataset-fashion-mnist.deb").unlink()  # served from the verified cache from now on
    assert len(data_lib.load("fashion_mnist", "test", "auto").labels) == 20


def test_without_apt_get_a_deb_fetched_elsewhere_and_put_into_the_cache_is_used(
    tmp_path, monkeypatch
):
    """docs/datasets.md's route for macOS and non-Debian machines: the .deb from any Debian machine
    or container, put into the cache folder as dataset-fashion-mnist.deb, is verified and read; a
    damaged one is refused, naming where the file goes."""
    arrays = _fake_fashion(tmp_path, monkeypatch)
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))  # no apt-get (nor anything else)
    deb = tmp_path / "dataset-fashion-mnist.deb"
    good = deb.read_bytes()
    deb.write_bytes(good[:-1])
    with pytest.raises(DataError, match=f"apt-get not found.* put the .deb into {deb}"):
        data_lib.load("fashion_mnist", "test", "offline")
    deb.write_bytes(good)
    np.testing.assert_array_equal(
        data_lib.load("fashion_mnist", "test", "offline").labels, arrays["test"][1]
    )


def test_a_damaged_file_inside_the_package_is_refused(tmp_path, monkeypatch):
    _fake_fashion(tmp_path, monkeypatch)
    spec = DATASETS["fashion_mnist"]
    pinned = dict(spec.offline.files)
    (images, (labels_name, _)) = pinned["test"]
    pinned["test"] = (images, (labels_name, "0" * 64))
    offline = dataclasses.replace(spec.offline, files=pinned)
    monkeypatch.setitem(DATASETS, "fashion_mnist", dataclasses.replace(spec, offline=offline))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz inside .* fails its checksum"):
        data_lib.load("fashion_mnist", "train", "offline")
    assert not (tmp_path / "fashion_mnist.npz").exists()


def test_without_apt_get_fashion_mnist_names_every_route(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_JAX_DATA", str(tmp_path))
    failed = subprocess.CompletedProcess(
        [], 100, "", "E: Unable to locate package dataset-fashion-mnist"
    )
    monkeypatch.setattr(download.subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(DataError) as err:
        data_lib.load("fashion_mnist", "train", "offline")
    message = str(err.value)
    assert "apt-get download" in message and "TFDS" in message and "Unable to locate" in message
    assert "\n" not in message and list(tmp_path.iterdir()) == []


def test_cifar10_comes_through_tfds_and_says_why_there_is_no_offline_route(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        split = data_lib.load("cifar10", "train", "tfds")
    assert (
        split.images.shape == (6, 32, 32, 3)
        and split.images.dtype == np.uint8
        and split.labels.dtype == np.int32
    )
    monkeypatch.setenv("GAN_JAX_DATA", str(tmp_path))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    with pytest.raises(DataError, match="no package registry ships CIFAR-10.*--data-source tfds"):
        data_lib.load("cifar10", "test")


def test_a_gan_on_32x32_rgb_images_trains_and_writes_colour_grids(tmp_path):
    rng = np.random.default_rng(0)
    split = Split(
        rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8), (np.arange(16) % 10).astype(np.int32)
    )
    config = GANConfig(
        dataset="cifar10",
        epochs=1,
        batch_size=8,
        noise_dim=8,
        g_features=(8, 4, 4),
        d_features=(4, 8),
        num_samples=4,
    )
    state = train(config, tmp_path, data=split, progress=False, tensorboard=False)
    from PIL import Image

    from gan_jax.tasks import make_task

    assert make_task(config).sample_grid(state).shape == (4, 32, 32, 3)
    assert Image.open(tmp_path / "samples" / "epoch_0001.png").mode == "RGB"
    with pytest.raises(
        DataError, match=r"images must have shape \[N, 32, 32, 3\], got \(16, 28, 28, 1\)"
    ):
        grey = Split(split.images[:, :28, :28, :1], split.labels)
        train(config, tmp_path / "grey", data=grey, progress=False)


def test_image_grids_keep_colour():
    rgb = -np.ones((3, 4, 4, 3), np.float32)
    rgb[..., 0] = 1.0  # pure red
    grid = image_grid(rgb, pad=1)
    assert grid.shape == (2 * 5 + 1, 2 * 5 + 1, 3) and grid[1, 1].tolist() == [255, 0, 0]
    assert image_grid(rgb[..., :1], pad=1).shape == (11, 11)


def test_classifiers_are_sized_from_the_dataset_and_old_configs_read_as_mnist():
    for kind in (SGANConfig, SupervisedConfig):
        task = make_task(kind.recipe("conv", dataset="cifar10", labels=100))
        assert task.image_shape == (32, 32, 3) and task.num_classes == 10
        shaped = make_task(
            kind.recipe("conv", dataset="mnist", image_size=32, channels=3, labels=100)
        )
        assert shaped.image_shape == (32, 32, 3)
    stored = json.loads(json.dumps(GANConfig().to_dict()))
    del stored["dataset"]  # a run stored before datasets existed
    assert (
        GANConfig.from_dict(stored).dataset == "mnist" and GANConfig().conflicts_with(stored) == []
    )
    assert GANConfig(dataset="fashion_mnist").conflicts_with(stored) == ["dataset"]


def test_a_feature_network_for_another_dataset_is_never_trained_by_an_evaluation(
    tmp_path, monkeypatch
):
    from gan_jax import features

    monkeypatch.setenv("GAN_JAX_FEATURES", str(tmp_path))  # CIFAR-10: no packaged network
    with pytest.raises(DataError, match="`gan-jax features --retrain --dataset cifar10`"):
        features.load_feature_network(features.feature_net_config("cifar10"))
    assert list(tmp_path.iterdir()) == []


def test_per_epoch_evaluation_without_a_feature_network_fails_before_training(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("GAN_JAX_FEATURES", str(tmp_path / "features"))
    split = Split(np.zeros((16, 32, 32, 3), np.uint8), (np.arange(16) % 10).astype(np.int32))
    config = GANConfig(
        dataset="cifar10",
        eval_every_epoch=True,
        epochs=1,
        batch_size=8,
        noise_dim=8,
        g_features=(8, 4, 4),
        d_features=(4, 8),
        num_samples=4,
    )
    with pytest.raises(DataError, match="--retrain --dataset cifar10"):
        train(config, tmp_path / "run", data=split, progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists()
