"""The feature network of the Fréchet distance: shipped in the package, or one trained on this
machine.

Inception weights cannot be downloaded here, and MNIST is the wrong domain for them anyway: the
usual practice is a small MNIST classifier's features. The default network (`FEATURE_NET`) ships
for MNIST (`gan_jax/assets/feature_net.npz`, 99.12 % test accuracy) and Fashion-MNIST
(`feature_net_fashion_mnist.npz`, 90.26 %), each checked against its SHA-256 in `PACKAGED_FILES`
on load, so an FD is the same function on every machine; every evaluation names the network by
that checksum (`fd_network`). One npz holds the parameters, the test accuracy, feature statistics
of the 60,000 training and 10,000 test images, and the floor `fd_floor` = FD(train, test).

This module only loads networks; an evaluation never trains one. Any other config, or
`gan-jax features --retrain`, is trained by `gan_jax.api.train_feature_network` with the project's
own loop and cached as the same npz in `$GAN_JAX_FEATURES`, else the data cache (`$GAN_JAX_DATA` or
`~/.cache/gan_jax`), under `feature_net_<config hash>/`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from gan_jax import data as data_lib
from gan_jax.config import FeatureNetConfig
from gan_jax.errors import DataError
from gan_jax.metrics import feature_statistics, frechet_distance
from gan_jax.models import FeatureNet
from gan_jax.steps import map_in_chunks

log = logging.getLogger("gan_jax")

FEATURE_NET = FeatureNetConfig()
FILE = "network.npz"
ASSETS = pathlib.Path(__file__).parent / "assets"
# Dataset → (file, SHA-256) of its packaged network, each trained with `FeatureNetConfig(dataset=)`
# by `gan-jax features --retrain --dataset D` (benchmarks/results/feature_net_*packaged_cpu.json).
PACKAGED_FILES: dict[str, tuple[pathlib.Path, str]] = {
    "mnist": (
        ASSETS / "feature_net.npz",
        "c68ea5fd5fb154f28dbbc62e042da5a78549b84c4d64c4afe289afdf50014a62",
    ),
    "fashion_mnist": (
        ASSETS / "feature_net_fashion_mnist.npz",
        "cbb0f795fd9bd66be7561cbb030a112c7f35c03db88bc495eb0d37824216c8a5",
    ),
}
PACKAGED, PACKAGED_SHA256 = PACKAGED_FILES["mnist"]  # MNIST's, the default
PACKAGED_CONFIG = FeatureNetConfig()  # the config PACKAGED was trained with
_NOT_TRAINING_FIELDS = ("data_source", "steps_per_call", "checkpoint_every")
EVAL_CHUNK = 1000


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureNetwork:
    """A trained feature network and the reference statistics of real MNIST.

    Attributes:
      config: its architecture and training config.
      params: its parameters.
      test_accuracy: accuracy on the 10,000 test images.
      train_stats, test_stats: (mean `[D]`, covariance `[D, D]`) of the features of the training and
        test images, float64.
      fd_floor: the Fréchet distance between those two: what a perfect generator would score
        against the test set (finite-sample noise and the train/test difference).
      path: the npz it was loaded from (the packaged file, or this machine's cache).
      sha256: that file's SHA-256: two FDs are comparable when their networks' checksums agree.
    """

    config: FeatureNetConfig
    params: Any
    test_accuracy: float
    train_stats: tuple[np.ndarray, np.ndarray]
    test_stats: tuple[np.ndarray, np.ndarray]
    fd_floor: float
    path: pathlib.Path
    sha256: str

    @property
    def packaged(self) -> bool:
        """Whether this is a network shipped in the package (the same on every machine)."""
        return any(self.sha256 == digest for _, digest in PACKAGED_FILES.values())

    def logits_and_features(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(logits [N, classes], features [N, D])` of uint8 `[N, H, W, C]` or float images in
        [-1, 1]."""
        return logits_and_features(network_module(self.config), self.params, images)


def network_module(config: FeatureNetConfig) -> FeatureNet:
    """The linen module of a feature network config, with its dataset's classes."""
    classes = data_lib.describe(
        config.dataset, config.image_size, config.channels, test_fraction=config.test_fraction
    ).num_classes
    return FeatureNet(classes, tuple(config.widths), config.hidden)


def logits_and_features(
    network: FeatureNet, params, images: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`(logits [N, classes], features [N, hidden])` of uint8 images `[N, H, W, C]`, or float ones
    in [-1, 1].

    The images go to the device whole (MNIST's 60,000 training images: 47 MB as uint8); the network
    runs on `EVAL_CHUNK` of them at a time.
    """
    # Full float32 on GPUs too (not TF32): the same FD everywhere.
    with jax.default_matmul_precision("highest"):
        return jax.device_get(_apply(network, params, np.asarray(images)))


@functools.partial(jax.jit, static_argnums=0)
def _apply(network: FeatureNet, params, images: jax.Array):
    pixels = (
        data_lib.to_unit_range if images.dtype == jnp.uint8 else (lambda x: x.astype(jnp.float32))
    )
    return map_in_chunks(lambda x: network.apply({"params": params}, pixels(x)), images, EVAL_CHUNK)


def cache_folder(config: FeatureNetConfig) -> pathlib.Path:
    """Where the network of `config` is trained and cached (named by a hash of its training
    fields)."""
    digest = hashlib.sha256(_config_json(config).encode()).hexdigest()[:12]
    root = os.environ.get("GAN_JAX_FEATURES") or data_lib.cache_dir()
    return pathlib.Path(root) / f"feature_net_{digest}"


def load_feature_network(
    config: FeatureNetConfig | None = None, *, trained_here: bool = False
) -> FeatureNetwork:
    """The feature network of `config` (default `FEATURE_NET`); loads, never trains.

    The packaged network of `config.dataset` (`PACKAGED_FILES`) when `config` trains like the one
    packaged (`FeatureNetConfig(dataset=config.dataset)`) and not `trained_here`; otherwise the one
    `gan_jax.api.train_feature_network(config)` trained and cached on this machine. Memoized per
    process.
    Raises:
      DataError: the packaged file fails its checksum, or this machine has no intact cached network
        for `config` (the message names `gan-jax features --retrain`).
    """
    config = config or FEATURE_NET
    packaged = PACKAGED_FILES.get(config.dataset)
    packaged_config = FeatureNetConfig(dataset=config.dataset)
    if not trained_here and packaged and _config_json(config) == _config_json(packaged_config):
        return _load_packaged(*packaged, packaged_config)
    return _load_cached(config, cache_folder(config))


@functools.lru_cache(maxsize=4)
def _load_packaged(
    path: pathlib.Path, sha256: str = PACKAGED_SHA256, config: FeatureNetConfig = PACKAGED_CONFIG
) -> FeatureNetwork:
    digest = data_lib.sha256_of(path) if path.exists() else "missing"
    if digest != sha256:
        raise DataError(
            f"the packaged feature network {path} fails its checksum ({digest[:16]}, expected "
            f"{sha256[:16]}); reinstall gan_jax, or use `gan-jax features --retrain`"
        )
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    if str(arrays["config"]) != _config_json(config):  # a changed default: a new file
        raise DataError(
            f"the packaged feature network {path} was trained with {arrays['config']}, not "
            f"{_config_json(config)}; retrain it (`gan-jax features --retrain --dataset "
            f"{config.dataset}`) and package it"
        )
    return _network(config, arrays, path, digest)


@functools.lru_cache(maxsize=4)
def _load_cached(config: FeatureNetConfig, folder: pathlib.Path) -> FeatureNetwork:
    arrays = read_cached(config, folder)
    if arrays is None:
        raise DataError(
            f"no intact feature network for this config in {folder}; train it with "
            f"`gan-jax features --retrain --dataset {config.dataset}{_shape_options(config)}` "
            "(or gan_jax.api.train_feature_network), then evaluate again"
        )
    return _network(config, arrays, folder / FILE, data_lib.sha256_of(folder / FILE))


def read_cached(config: FeatureNetConfig, folder: pathlib.Path) -> dict[str, np.ndarray] | None:
    """The cached arrays of `config`'s network in `folder`, or None when missing, damaged or of
    another config."""
    with data_lib.cache_lock(folder / FILE):
        arrays = data_lib.read_verified_npz(folder / FILE, "feature network cache")
    return None if arrays is None or str(arrays["config"]) != _config_json(config) else arrays


def write_cached(
    config: FeatureNetConfig,
    folder: pathlib.Path,
    params,
    train: data_lib.Split,
    test: data_lib.Split,
) -> None:
    """Computes a trained network's reference arrays (test accuracy, feature statistics of both
    splits, the FD floor) and caches them with its parameters in `folder` (checksummed)."""
    network = network_module(config)
    test_logits, test_features = logits_and_features(network, params, test.images)
    _, train_features = logits_and_features(network, params, train.images)
    train_mu, train_sigma = feature_statistics(train_features)
    test_mu, test_sigma = feature_statistics(test_features)
    flat = traverse_util.flatten_dict(jax.device_get(params))
    arrays = {
        **{"params/" + "/".join(k): v for k, v in flat.items()},
        "config": np.asarray(_config_json(config)),
        "test_accuracy": np.asarray(np.mean(np.argmax(test_logits, -1) == test.labels)),
        "train_mu": train_mu,
        "train_sigma": train_sigma,
        "test_mu": test_mu,
        "test_sigma": test_sigma,
        "fd_floor": np.asarray(frechet_distance(train_mu, train_sigma, test_mu, test_sigma)),
    }
    folder.mkdir(parents=True, exist_ok=True)
    with data_lib.cache_lock(folder / FILE):
        data_lib.write_verified_npz(folder / FILE, arrays)
    _load_cached.cache_clear()
    log.info(
        "feature network cached in %s (test accuracy %.4f, FD floor %.3f)",
        folder / FILE,
        float(arrays["test_accuracy"]),
        float(arrays["fd_floor"]),
    )


def _network(
    config: FeatureNetConfig, arrays: dict[str, np.ndarray], path: pathlib.Path, digest: str
) -> FeatureNetwork:
    params = traverse_util.unflatten_dict(
        {tuple(k.split("/")[1:]): v for k, v in arrays.items() if k.startswith("params/")}
    )
    return FeatureNetwork(
        config=config,
        params=params,
        test_accuracy=float(arrays["test_accuracy"]),
        train_stats=(arrays["train_mu"], arrays["train_sigma"]),
        test_stats=(arrays["test_mu"], arrays["test_sigma"]),
        fd_floor=float(arrays["fd_floor"]),
        path=path,
        sha256=digest,
    )


def _config_json(config: FeatureNetConfig) -> str:
    fields = {k: v for k, v in config.to_dict().items() if k not in _NOT_TRAINING_FIELDS}
    # Networks cached (and packaged) before these fields existed are MNIST's, as stored.
    if fields["dataset"] == "mnist":
        del fields["dataset"]
    for name in ("image_size", "channels"):
        if fields[name] is None:
            del fields[name]
    # ... and before these: at their defaults they are left out, so those networks still match
    defaults = FeatureNetConfig()
    for name in ("test_fraction", "val_fraction", "allow_rare_classes"):
        if fields.get(name) == getattr(defaults, name):
            fields.pop(name, None)
    return json.dumps(fields, sort_keys=True)


def feature_net_config(
    dataset: str, image_size: int | None = None, channels: int | None = None
) -> FeatureNetConfig:
    """`FEATURE_NET` trained on `dataset` shaped by `image_size`/`channels`: the network that
    scores samples of that dataset.

    Raises:
      DataError: the dataset has no labels to train a network on (the message says the way out).
    """
    if not data_lib.describe(dataset, image_size, channels).labeled:
        raise DataError(
            f"{dataset} has no labels, so no feature network can be trained on it for an FD; put "
            f"its images in class subfolders and run `gan-jax features --retrain --dataset "
            f"{dataset}`, then evaluate again"
        )
    return dataclasses.replace(
        FEATURE_NET, dataset=dataset, image_size=image_size, channels=channels
    )


def _shape_options(config: FeatureNetConfig) -> str:
    """The `--image-size`/`--channels` options of `config`, as a command line gives them."""
    sizes = (("--image-size", config.image_size), ("--channels", config.channels))
    return "".join(f" {flag} {value}" for flag, value in sizes if value is not None)
