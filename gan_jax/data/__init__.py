"""The data layer: datasets as a table, one reader per source, verified downloads, training plans.

Imports point one way, from the top: `loading` (`load`: a split of a named dataset, cached;
`describe`: its spec) → `user` (`folder:`, `npz:`, `tfds:` datasets) → `shaping` (crop, resize,
channels) → `datasets` (the table) → `sources.{tfds,wheel,deb,folder,npz}` (one reader each) →
`download` (fetch once, verify SHA-256, cache `.npz`) → `spec` (`DatasetSpec`, `Split`).
`plans` (pixel scaling, epoch orders: JAX) and `subsets` (labelled subsets) stand apart from
fetching. Nothing here imports `gan_jax.config`, and nothing but `plans` imports JAX: it loads on
first use of `epoch_permutation` or `to_unit_range` (so the command line parses without JAX).
"""

from gan_jax.data.datasets import DATASETS, dataset, names_with_shape
from gan_jax.data.download import (
    cache_dir,
    cache_lock,
    read_verified_npz,
    sha256_of,
    write_verified_npz,
)
from gan_jax.data.loading import check_name, describe, has_val_split, load, load_for, remember
from gan_jax.data.spec import SPLITS, DatasetSpec, Split, check_images
from gan_jax.data.subsets import labeled_subset, require_label_count

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "SPLITS",
    "Split",
    "cache_dir",
    "cache_lock",
    "check_images",
    "check_name",
    "describe",
    "dataset",
    "epoch_permutation",
    "labeled_subset",
    "load",
    "has_val_split",
    "load_for",
    "names_with_shape",
    "read_verified_npz",
    "remember",
    "require_label_count",
    "sha256_of",
    "to_unit_range",
    "write_verified_npz",
]


def __getattr__(name: str):
    if name in ("epoch_permutation", "to_unit_range"):  # JAX: imported on first use
        from gan_jax.data import plans

        return getattr(plans, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
