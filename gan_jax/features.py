"""The feature network of the Fréchet distance: trained once per machine, cached with a checksum.

Inception weights cannot be downloaded here, and MNIST is the wrong domain for them anyway: the
usual practice is a small MNIST classifier's features. On first use `load_feature_network` trains
`FeatureNet` (`FEATURE_NET`, ≥ 99 % test accuracy) on the training split with the project's own
loop (progress bar; an interrupted training resumes), then stores in one verified npz:
the parameters, the test accuracy, feature statistics of the 60,000 training and 10,000 test
images, and the floor `fd_floor` = FD(train, test). Later uses load that file in about a second.

Folder: `$GAN_JAX_FEATURES`, else the data cache (`$GAN_JAX_DATA` or `~/.cache/gan_jax`), then
`feature_net_<config hash>/`. A corrupted cache file is rebuilt from the training checkpoints.
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
import numpy as np
from flax import traverse_util

from gan_jax import data as data_lib
from gan_jax.config import FeatureNetConfig
from gan_jax.metrics import feature_statistics, frechet_distance
from gan_jax.tasks.features import FeatureTask

log = logging.getLogger("gan_jax")

FEATURE_NET = FeatureNetConfig()
FILE = "network.npz"
_NOT_TRAINING_FIELDS = ("data_source", "steps_per_call", "checkpoint_every")


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureNetwork:
    """A trained feature network and the reference statistics of real MNIST.

    Attributes:
      task: its `FeatureTask` (architecture and training config).
      params: its parameters.
      test_accuracy: accuracy on the 10,000 test images.
      train_stats, test_stats: (mean `[D]`, covariance `[D, D]`) of the features of the training and
        test images, float64.
      fd_floor: the Fréchet distance between those two: what a perfect generator would score
        against the test set (finite-sample noise and the train/test difference).
      path: the cache file.
    """

    task: FeatureTask
    params: Any
    test_accuracy: float
    train_stats: tuple[np.ndarray, np.ndarray]
    test_stats: tuple[np.ndarray, np.ndarray]
    fd_floor: float
    path: pathlib.Path

    def logits_and_features(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(logits [N, 10], features [N, D])` of uint8 `[N, 28, 28, 1]` or float images in [-1, 1]."""
        return self.task.logits_and_features(self.params, images)


def cache_folder(config: FeatureNetConfig) -> pathlib.Path:
    """Where the network of `config` is trained and cached (named by a hash of its training fields)."""
    digest = hashlib.sha256(_config_json(config).encode()).hexdigest()[:12]
    root = os.environ.get("GAN_JAX_FEATURES") or data_lib.cache_dir()
    return pathlib.Path(root) / f"feature_net_{digest}"


def load_feature_network(config: FeatureNetConfig | None = None, *, progress: bool = True) -> FeatureNetwork:
    """The cached feature network of `config` (default `FEATURE_NET`), trained first if absent.

    Memoized per process. Training reads MNIST through `config.data_source` and takes a few
    minutes on a CPU, once per machine.
    """
    return _load(config or FEATURE_NET, cache_folder(config or FEATURE_NET), progress)


@functools.lru_cache(maxsize=4)
def _load(config: FeatureNetConfig, folder: pathlib.Path, progress: bool) -> FeatureNetwork:
    task, path = FeatureTask(config), folder / FILE
    arrays = data_lib.read_verified_npz(path, "feature network cache")
    if arrays is None or str(arrays["config"]) != _config_json(config):
        arrays = _build(task, folder, progress)
        data_lib.write_verified_npz(path, arrays)
        log.info("feature network cached in %s (test accuracy %.4f, FD floor %.3f)", path,
                 float(arrays["test_accuracy"]), float(arrays["fd_floor"]))
    params = traverse_util.unflatten_dict({tuple(k.split("/")[1:]): v for k, v in arrays.items()
                                           if k.startswith("params/")})
    return FeatureNetwork(task=task, params=params, test_accuracy=float(arrays["test_accuracy"]),
                          train_stats=(arrays["train_mu"], arrays["train_sigma"]),
                          test_stats=(arrays["test_mu"], arrays["test_sigma"]),
                          fd_floor=float(arrays["fd_floor"]), path=path)


def _config_json(config: FeatureNetConfig) -> str:
    return json.dumps({k: v for k, v in config.to_dict().items() if k not in _NOT_TRAINING_FIELDS}, sort_keys=True)


def _build(task: FeatureTask, folder: pathlib.Path, progress: bool) -> dict[str, np.ndarray]:
    """Trains (or finishes training) the network in `folder/train` and computes its reference arrays."""
    from gan_jax.loop import train

    log.info("training the Fréchet-distance feature network once for this machine (a few minutes on a CPU) "
             "in %s", folder / "train")
    source = task.config.data_source
    train_split, test_split = data_lib.load_mnist("train", source), data_lib.load_mnist("test", source)
    state = train(task.config, folder / "train", data=train_split, test_data=test_split, progress=progress)
    params = state.models["classifier"].params
    test_logits, test_features = task.logits_and_features(params, test_split.images)
    _, train_features = task.logits_and_features(params, train_split.images)
    train_mu, train_sigma = feature_statistics(train_features)
    test_mu, test_sigma = feature_statistics(test_features)
    flat = traverse_util.flatten_dict(jax.device_get(params))
    return {
        **{"params/" + "/".join(k): v for k, v in flat.items()},
        "config": np.asarray(_config_json(task.config)),
        "test_accuracy": np.asarray(np.mean(np.argmax(test_logits, -1) == test_split.labels)),
        "train_mu": train_mu, "train_sigma": train_sigma, "test_mu": test_mu, "test_sigma": test_sigma,
        "fd_floor": np.asarray(frechet_distance(train_mu, train_sigma, test_mu, test_sigma)),
    }

