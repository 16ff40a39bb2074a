"""The feed: everything between a dataset's arrays and the compiled step.

A task's step never sees the dataset. Its feed (`task.feed`) turns the training split into
arrays (`arrays`, NumPy, put on the device by the loop or streamed from host memory by
`gan_jax.stream`), makes each epoch's order (`epoch_plan`, a pure function of the seed and the
epoch), gathers the uint8 batches of one compiled call stacked along a leading `[steps]` axis
(`batches`), and inside the step turns a batch into what the task's maths reads (`prepare`:
pixels scaled to the model's range, the batch axis sharded over the mesh). The runner
(`gan_jax.steps.make_runner`) then scans `task.train_step(models, feed.prepare(batch, feed_key),
key)` over the stacked batches; `feed_key` draws the feed's augmentations.

Two feeds cover gan_jax's tasks:
- `ImageFeed`: one order over the training images (and their classes), `rows_per_step` rows a
  step (GAN, cGAN, feature network). Its batches are consecutive rows of the order, so the host
  can gather them as well (streaming).
- `FewLabelFeed`: per data seed ("member"), a class-balanced labelled subset tiled over the epoch
  with a fresh shuffle per copy, and optionally two independent orders of all training images as
  the unlabelled batches (SGAN; the supervised baseline reads the labelled part only).

Feeds are frozen dataclasses: equal configs give equal feeds, hence one compiled program.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.ndimage import map_coordinates

from gan_jax import data as data_lib
from gan_jax.errors import ConfigError, DataError
from gan_jax.parallel import shard_batch
from gan_jax.steps import Stream, over_members, stream_key

PixelRange = Literal["signed", "unit"]  # [-1, 1] (the tutorial's) or [0, 1] (Improved GAN's)


def scale_pixels(images: jax.Array, pixel_range: PixelRange) -> jax.Array:
    """uint8 pixels 0..255 → float32 in [-1, 1] (`signed`) or [0, 1] (`unit`), same shape."""
    if pixel_range == "unit":
        return images.astype(jnp.float32) / 255.0
    return data_lib.to_unit_range(images)


def random_shift(
    images: jax.Array, max_shift: int, key: jax.Array, background: float = -1.0
) -> jax.Array:
    """Each image of `[B, H, W, C]` shifted by its own uniform (dy, dx) in [-max_shift, max_shift],
    the uncovered border filled with `background` (black: -1 for images in [-1, 1])."""
    if max_shift == 0:
        return images
    size = images.shape[1:3]
    border = ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0))
    padded = jnp.pad(images, border, constant_values=jnp.asarray(background, images.dtype))
    offsets = jax.random.randint(key, (images.shape[0], 2), 0, 2 * max_shift + 1)
    crop = lambda image, offset: jax.lax.dynamic_slice(
        image, (offset[0], offset[1], 0), (*size, image.shape[-1])
    )
    return jax.vmap(crop)(padded, offsets)


def rotate(images: jax.Array, degrees: jax.Array, background: float = -1.0) -> jax.Array:
    """Each image of `[B, H, W, C]` rotated about its centre by its own angle (`degrees`, `[B]`;
    positive: clockwise as displayed, rows running down), bilinear, what comes from outside filled
    with `background`."""
    height, width = images.shape[1:3]
    ys, xs = jnp.meshgrid(
        jnp.arange(height) - (height - 1) / 2, jnp.arange(width) - (width - 1) / 2, indexing="ij"
    )

    def one(image: jax.Array, angle: jax.Array) -> jax.Array:
        cos, sin = jnp.cos(angle), jnp.sin(angle)
        # each output pixel reads the input where the inverse rotation takes it
        rows = cos * ys - sin * xs + (height - 1) / 2
        cols = sin * ys + cos * xs + (width - 1) / 2
        sample = lambda channel: map_coordinates(channel, [rows, cols], order=1, cval=0.0)
        return jax.vmap(sample, in_axes=-1, out_axes=-1)(image - background) + background

    return jax.vmap(one)(images, jnp.deg2rad(degrees.astype(jnp.float32)))


def random_rotate(
    images: jax.Array, max_degrees: float, key: jax.Array, background: float = -1.0
) -> jax.Array:
    """`rotate` by a uniform angle in [-max_degrees, max_degrees] per image."""
    degrees = jax.random.uniform(key, images.shape[:1], minval=-max_degrees, maxval=max_degrees)
    return rotate(images, degrees, background)


def cutout(images: jax.Array, size: int, corners: jax.Array, background: float = -1.0) -> jax.Array:
    """Each image of `[B, H, W, C]` with a `size`×`size` square set to `background`, its top-left
    corner at `corners` (int `[B, 2]`, row and column; the square may run off the image)."""
    rows = jnp.arange(images.shape[1])[None, :, None] - corners[:, 0, None, None]
    cols = jnp.arange(images.shape[2])[None, None, :] - corners[:, 1, None, None]
    inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
    return jnp.where(inside[..., None], jnp.asarray(background, images.dtype), images)


def random_cutout(
    images: jax.Array, size: int, key: jax.Array, background: float = -1.0
) -> jax.Array:
    """`cutout` of a square centred on a uniform pixel of each image (FixMatch's Cutout)."""
    limits = jnp.asarray(images.shape[1:3])
    centres = jax.random.randint(key, (images.shape[0], 2), 0, limits)
    return cutout(images, size, centres - size // 2, background)


def checked_labels(
    train: data_lib.Split, num_classes: int, run: tuple[str, str], unlabeled_ok: bool = False
) -> np.ndarray:
    """The training labels, int32 `[N]`, one per image, each in 0..num_classes-1 (or -1, an
    unlabelled image, where `unlabeled_ok`); a DataError otherwise, naming `run` = (dataset, task).
    """
    dataset, task = run
    if train.labels is None or not num_classes:
        raise DataError(
            f"{dataset} has no labels, and a {task} run needs them; give one subfolder per class "
            "(folder:), y (npz:), or a labeled dataset"
        )
    labels = np.asarray(train.labels, np.int32)
    if labels.shape != (len(train.images),) or not np.all(
        (labels >= -int(unlabeled_ok)) & (labels < num_classes)
    ):
        got = f"shape {labels.shape}" + (
            f", values {labels.min()}..{labels.max()}" if labels.size else ""
        )
        raise DataError(
            f"a {task} run needs one label 0..{num_classes - 1} per training image; got {got}"
        )
    return labels


@dataclasses.dataclass(frozen=True)
class ImageFeed:
    """Training images (and with `labels`, their classes) in one order per epoch.

    Attributes:
      seed: the run's seed; the order of epoch e is `data.epoch_permutation(key(DATA), e, N)`.
      image_shape: `(H, W, C)` of the images.
      rows_per_step: images one step reads (the GAN with `critic_steps` > 1 reads several batches).
      labels: also feed the class of each image (cGAN, feature network).
      num_classes: classes of the dataset (with `labels`).
      run: (dataset, task) names for error messages, e.g. ("mnist", "cgan").
      rows_name: what `rows_per_step` is ("batch_size", "critic_steps × batch_size").
      rows_options: the options that make it smaller, for the too-few-images error.
    A batch is `{"images": [rows_per_step, H, W, C]}` (and `"labels"` int32 `[rows_per_step]`);
    prepared, the images are float32 in [-1, 1].
    """

    seed: int
    image_shape: tuple[int, int, int]
    rows_per_step: int
    labels: bool = False
    num_classes: int = 0
    run: tuple[str, str] = ("the data", "this")
    rows_name: str = "batch_size"  # what `rows_per_step` is, in the too-few-images error
    rows_options: str = "--batch-size"

    def arrays(self, train: data_lib.Split) -> dict[str, np.ndarray]:
        """`images` uint8 `[N, H, W, C]` (and `labels` int32 `[N]`), checked; NumPy."""
        arrays = {"images": data_lib.check_images(train.images, self.image_shape)}
        if self.labels:
            arrays["labels"] = checked_labels(train, self.num_classes, self.run)
        return arrays

    def steps_per_epoch(self, num_examples: int) -> int:
        """Full steps per pass over `num_examples` images (the last incomplete one dropped); a
        ConfigError when there is not one."""
        return full_steps(num_examples, self.rows_per_step, self.rows_name, self.rows_options)

    def epoch_plan(self, epoch: int, num_examples: int) -> jax.Array:
        """The epoch's example order, int32 `[num_examples]` on the device."""
        return data_lib.epoch_permutation(stream_key(self.seed, Stream.DATA), epoch, num_examples)

    def batches(self, data: Any, plan: jax.Array, first: int, steps: int) -> dict[str, jax.Array]:
        """Steps `first .. first+steps-1` of the epoch: rows `plan[first·r : (first+steps)·r]` of
        every array, `[steps, r, ...]` (r = `rows_per_step`), on the device."""
        return _image_batches(self, data, plan, jnp.int32(first), steps)

    def host_batches(self, arrays: Any, order: np.ndarray, first: int, steps: int) -> Any:
        """`batches` gathered on the host from the NumPy `arrays` and the fetched `order`:
        the same uint8 rows in the same layout."""
        r = self.rows_per_step
        rows = order[first * r : (first + steps) * r]
        return jax.tree.map(
            lambda x: np.take(x, rows, axis=0).reshape(steps, r, *x.shape[1:]), arrays
        )

    def prepare(self, batch: dict[str, jax.Array], key: jax.Array) -> dict[str, jax.Array]:
        """Inside the step: images to float32 in [-1, 1], the batch axis sharded (`key` unused:
        no augmentation here)."""
        del key
        return shard_batch({**batch, "images": scale_pixels(batch["images"], "signed")})


@functools.partial(jax.jit, static_argnums=(0, 4))
def _image_batches(feed: ImageFeed, data: Any, plan: jax.Array, first: jax.Array, steps: int):
    r = feed.rows_per_step
    rows = lax.dynamic_slice_in_dim(plan, first * r, steps * r)
    return jax.tree.map(lambda x: jnp.take(x, rows, axis=0).reshape(steps, r, *x.shape[1:]), data)


@dataclasses.dataclass(frozen=True)
class FewLabelFeed:
    """Per data seed ("member"), its labelled subset, and optionally all images as unlabelled.

    Member d's labelled subset is `data.labeled_subset(labels, count, data_seeds[d])`; its epoch
    tiles the subset `ceil(steps·B / count)` times, each copy shuffled afresh (Improved GAN's
    schedule: an epoch is `N // batch_size` steps). With `unlabeled`, each step also reads two
    independently ordered unlabelled batches (`unlabeled`, and `unlabeled_g` for the generator's
    feature matching), each order a permutation of all N training images. Member d's orders come
    from `fold_in(fold_in(key(DATA), data_seed), epoch)`.

    A batch, per member (every array has a leading `[members]` axis): `labeled` uint8
    `[B, H, W, C]`, `labels` int32 `[B]`, and with `unlabeled` also `unlabeled`, `unlabeled_g`
    `[B, H, W, C]`; prepared, the images are float32 in `pixel_range`. Augmentation happens in
    `prepare`, from the step's key: with `augment_shift`, each labelled image is shifted by up to
    that many pixels; with `pseudo_views`, `prepare` adds two views of the unlabelled batch for
    pseudo-labels: `unlabeled_weak` (shifted up to `augment_shift`) and `unlabeled_strong` (up to
    `strong_shift`, then rotated up to `strong_rotate` degrees and cut out by a `strong_cutout`
    square where those are set).
    """

    seed: int
    data_seeds: tuple[int, ...]
    count: int  # labelled images per member
    batch_size: int
    num_classes: int
    image_shape: tuple[int, int, int]
    pixel_range: PixelRange
    unlabeled: bool = False
    run: tuple[str, str] = ("the data", "this")
    augment_shift: int = 0
    pseudo_views: bool = False  # the unlabelled batch's weak and strong views
    strong_shift: int = 0
    strong_rotate: float = 0.0
    strong_cutout: int = 0

    rows_per_step = None  # not streamable: the labelled subsets and two orders live on the device

    @property
    def num_members(self) -> int:
        return len(self.data_seeds)

    def labeled_indices(self, labels: np.ndarray) -> np.ndarray:
        """int `[members, count]`: each member's labelled subset of the training split."""
        return np.stack(
            [
                data_lib.labeled_subset(labels, self.count, seed, self.num_classes)
                for seed in self.data_seeds
            ]
        )

    def arrays(self, train: data_lib.Split) -> dict[str, np.ndarray]:
        """`labeled_x` uint8 `[S, L, H, W, C]`, `labeled_y` int32 `[S, L]` (S members, L labels),
        and `images` uint8 `[N, H, W, C]`: every training image (the unlabelled batches, and the
        data-dependent initialization of both tasks). Labels of -1 (unlabelled) are allowed where
        the unlabelled images are fed."""
        images = data_lib.check_images(train.images, self.image_shape)
        labels = checked_labels(train, self.num_classes, self.run, self.unlabeled)
        chosen = self.labeled_indices(labels)
        return {"labeled_x": images[chosen], "labeled_y": labels[chosen], "images": images}

    def steps_per_epoch(self, num_examples: int) -> int:
        """Full batches per pass over all `num_examples` training images (ConfigError: none)."""
        return full_steps(num_examples, self.batch_size, "batch_size")

    def epoch_plan(self, epoch: int, num_examples: int) -> dict[str, jax.Array]:
        """Each member's orders for one epoch, with a leading member axis: `labeled` int32
        `[S, steps·B]` into its subset; with `unlabeled` also `unlabeled`, `unlabeled_g` int32
        `[S, N]`."""
        return _few_label_plan(self, jnp.int32(epoch), num_examples)

    def member_plan(self, data_seed: jax.Array, epoch: jax.Array, num_examples: int):
        batch, count = self.batch_size, self.count
        total = self.steps_per_epoch(num_examples) * batch
        member_key = jax.random.fold_in(stream_key(self.seed, Stream.DATA), data_seed)
        lab_key, unl_key, unl_g_key = jax.random.split(jax.random.fold_in(member_key, epoch), 3)
        copies = jax.random.split(lab_key, math.ceil(total / count))
        labeled = jax.vmap(lambda k: jax.random.permutation(k, count))(copies).reshape(-1)[:total]
        plan = {"labeled": labeled.astype(jnp.int32)}
        if self.unlabeled:
            plan["unlabeled"] = jax.random.permutation(unl_key, num_examples).astype(jnp.int32)
            plan["unlabeled_g"] = jax.random.permutation(unl_g_key, num_examples).astype(jnp.int32)
        return plan

    def batches(self, data: Any, plan: Any, first: int, steps: int) -> dict[str, jax.Array]:
        """Steps `first .. first+steps-1` of the epoch, `[steps, S, B, ...]` on the device."""
        return _few_label_batches(self, data, plan, jnp.int32(first), steps)

    def member_batches(self, labeled_x, labeled_y, images, plan, first, steps):
        """One member's `[steps, B, ...]` batches (see `batches`)."""
        size = steps * self.batch_size

        def rows(order):
            return lax.dynamic_slice_in_dim(order, first * self.batch_size, size)

        def stacked(x):
            return x.reshape(steps, self.batch_size, *x.shape[1:])

        lab = rows(plan["labeled"])
        batch = {"labeled": stacked(labeled_x[lab]), "labels": stacked(labeled_y[lab])}
        if self.unlabeled:
            for name in ("unlabeled", "unlabeled_g"):
                batch[name] = stacked(jnp.take(images, rows(plan[name]), axis=0))
        return batch

    def prepare(self, batch: dict[str, jax.Array], key: jax.Array) -> dict[str, jax.Array]:
        """Inside the step (`[S, B, ...]`): images to float32 in `pixel_range`, augmented (member
        d's shifts from `fold_in(key, data_seeds[d])`), each member's batch axis sharded."""
        seeds = jnp.asarray(self.data_seeds, jnp.int32)
        black = 0.0 if self.pixel_range == "unit" else -1.0

        def member(b, seed):
            scaled = {
                k: v if k == "labels" else scale_pixels(v, self.pixel_range) for k, v in b.items()
            }
            if not (self.augment_shift or self.pseudo_views):
                return shard_batch(scaled)
            lab_key, weak_key, strong_key = jax.random.split(jax.random.fold_in(key, seed), 3)
            if self.augment_shift:
                scaled["labeled"] = random_shift(
                    scaled["labeled"], self.augment_shift, lab_key, black
                )
            if self.pseudo_views:
                unlabeled = scaled["unlabeled"]
                scaled["unlabeled_weak"] = random_shift(
                    unlabeled, self.augment_shift, weak_key, black
                )
                scaled["unlabeled_strong"] = self.strong_view(unlabeled, strong_key, black)
            return shard_batch(scaled)

        return over_members(member, self.num_members)(batch, seeds)

    def strong_view(self, images: jax.Array, key: jax.Array, background: float) -> jax.Array:
        """The pseudo-labels' strong view of `[B, H, W, C]`: shifted up to `strong_shift` pixels,
        then rotated up to `strong_rotate` degrees, then a `strong_cutout` square blanked."""
        strong = random_shift(images, self.strong_shift, key, background)
        if self.strong_rotate:
            strong = random_rotate(
                strong, self.strong_rotate, jax.random.fold_in(key, 1), background
            )
        if self.strong_cutout:
            strong = random_cutout(
                strong, self.strong_cutout, jax.random.fold_in(key, 2), background
            )
        return strong


@functools.partial(jax.jit, static_argnums=(0, 2))
def _few_label_plan(feed: FewLabelFeed, epoch: jax.Array, num_examples: int):
    seeds = jnp.asarray(feed.data_seeds, jnp.int32)
    member_plan = functools.partial(feed.member_plan, num_examples=num_examples)
    return over_members(member_plan, feed.num_members, in_axes=(0, None))(seeds, epoch)


@functools.partial(jax.jit, static_argnums=(0, 4))
def _few_label_batches(feed: FewLabelFeed, data: Any, plan: Any, first: jax.Array, steps: int):
    member = functools.partial(feed.member_batches, first=first, steps=steps)
    stacked = over_members(member, feed.num_members, in_axes=(0, 0, None, 0))(
        data["labeled_x"], data["labeled_y"], data["images"] if feed.unlabeled else None, plan
    )
    # [S, steps, ...] → [steps, S, ...]: the runner scans the leading axis
    return jax.tree.map(lambda x: jnp.moveaxis(x, 0, 1), stacked)


def full_steps(num_examples: int, rows: int, rows_name: str, options: str = "--batch-size") -> int:
    """Full steps of `rows` images in `num_examples` (the last incomplete one dropped); a
    ConfigError naming `rows_name` and the `options` that fix it when there is not one."""
    if num_examples < rows:
        raise ConfigError(
            f"{rows_name} {rows} exceeds the {num_examples} training images; "
            f"pass a smaller {options}"
        )
    return num_examples // rows
