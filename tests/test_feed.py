"""`gan_jax.feed`: what a step receives: stacked batches, pixel ranges, and the augmentations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import SGANConfig, SGANTask, Split, SupervisedConfig, SupervisedTask
from gan_jax.errors import ConfigError
from gan_jax.feed import cutout, random_shift, rotate
from tests.feeding import call_batches, on_device

SMALL = dict(labels=20, batch_size=10, epochs=1, data_seeds=(0, 3))


@pytest.fixture
def digits():
    """200 uint8 images, 20 of each label: a bright square on black, at a different place each."""
    images = np.zeros((200, 28, 28, 1), np.uint8)
    for i in range(200):
        row, col = 6 + i % 12, 6 + (i // 12) % 12
        images[i, row : row + 6, col : col + 6] = 200
    return Split(images, np.tile(np.arange(10, dtype=np.int32), 20))


def test_few_label_batches_are_stacked_per_step_and_member_and_prepared_in_the_models_range(
    digits,
):
    task = SGANTask(SGANConfig(**SMALL))  # mlp: pixels in [0, 1]
    data = on_device(task, digits)
    batches = call_batches(task, data, 200, first=2, steps=3)
    assert (
        batches["labeled"].shape == (3, 2, 10, 28, 28, 1) and batches["labeled"].dtype == np.uint8
    )
    assert set(batches) == {"labeled", "labels", "unlabeled", "unlabeled_g"}
    # step 2 + j of member d reads its plan's rows (2 + j)·B ...: the labelled subset's images
    plan = task.feed.epoch_plan(0, 200)
    chosen = task.labeled_indices(digits.labels)
    for j in range(3):
        for d in range(2):
            rows = np.asarray(plan["labeled"][d, (2 + j) * 10 : (3 + j) * 10])
            np.testing.assert_array_equal(batches["labeled"][j, d], digits.images[chosen[d][rows]])
    prepared = task.feed.prepare(jax.tree.map(lambda x: x[0], batches), jax.random.key(0))
    assert prepared["labeled"].dtype == jnp.float32
    np.testing.assert_allclose(prepared["labeled"], batches["labeled"][0] / 255.0, rtol=1e-6)
    conv = SupervisedTask(SupervisedConfig.recipe("conv", **SMALL))  # conv: [-1, 1]
    raw = jnp.full((2, 10, 28, 28, 1), 255, jnp.uint8)
    out = conv.feed.prepare({"labeled": raw, "labels": jnp.zeros((2, 10), jnp.int32)}, None)
    np.testing.assert_array_equal(out["labeled"], 1.0)


def test_shift_augmentation_moves_each_labelled_image_within_bounds_per_member_and_key(digits):
    plain = SupervisedTask(SupervisedConfig(**SMALL))
    shifted = SupervisedTask(SupervisedConfig(**SMALL, augment_shift=2))
    data = on_device(plain, digits)
    batch = jax.tree.map(lambda x: x[0], call_batches(plain, data, 200, 0, 1))
    key = jax.random.key(5)
    before = plain.feed.prepare(batch, key)["labeled"]
    after = shifted.feed.prepare(batch, key)["labeled"]
    np.testing.assert_array_equal(shifted.feed.prepare(batch, key)["labeled"], after)  # same key
    assert not np.array_equal(after, shifted.feed.prepare(batch, jax.random.key(6))["labeled"])
    assert not np.array_equal(before, after)
    for d in range(2):
        for i in range(10):
            a, b = np.asarray(before[d, i, ..., 0]), np.asarray(after[d, i, ..., 0])
            # the square is whole (no image reaches the border), moved by at most 2 pixels
            assert a.sum() == pytest.approx(b.sum(), rel=1e-6)
            (ra, ca), (rb, cb) = (np.argwhere(x > 0).min(0) for x in (a, b))
            assert abs(ra - rb) <= 2 and abs(ca - cb) <= 2
    # the members draw their own shifts (member keys fold in the data seed)
    moves = [
        [
            tuple(
                np.argwhere(np.asarray(after[d, i, ..., 0]) > 0).min(0)
                - np.argwhere(np.asarray(before[d, i, ..., 0]) > 0).min(0)
            )
            for i in range(10)
        ]
        for d in range(2)
    ]
    assert moves[0] != moves[1] and len(set(moves[0])) > 1


def test_the_pseudo_labels_views_are_weak_and_strong_shifts_of_the_unlabelled_batch(digits):
    task = SGANTask(SGANConfig(**SMALL, augment_shift=1, pseudo_label_weight=1.0, strong_shift=4))
    assert task.feed.strong_shift == 4 and task.feed.augment_shift == 1
    off = SGANTask(SGANConfig(**SMALL, augment_shift=1)).feed  # term off: no views
    assert not off.pseudo_views and task.feed.pseudo_views
    data = on_device(task, digits)
    batch = jax.tree.map(lambda x: x[0], call_batches(task, data, 200, 0, 1))
    prepared = task.feed.prepare(batch, jax.random.key(0))
    unlabeled = np.asarray(prepared["unlabeled"])
    for name, most in (("unlabeled_weak", 1), ("unlabeled_strong", 4)):
        view = np.asarray(prepared[name])
        assert view.shape == unlabeled.shape
        for d in range(2):
            for i in range(10):
                a, b = unlabeled[d, i, ..., 0], view[d, i, ..., 0]
                move = np.argwhere(b > 0).min(0) - np.argwhere(a > 0).min(0)
                assert np.abs(move).max() <= most and a.sum() == pytest.approx(b.sum())


def test_random_shift_fills_the_border_with_the_given_black():
    image = jnp.ones((4, 6, 6, 1))
    shifted = np.asarray(random_shift(image, 3, jax.random.key(0), background=0.0))
    assert set(np.unique(shifted)) <= {0.0, 1.0} and (shifted == 0.0).any()


def test_an_sgan_with_pseudo_labels_consistency_or_vat_trains_and_the_term_changes_the_step(digits):
    from gan_jax.steps import TaskStep, make_runner

    def step(**options):
        task = SGANTask(SGANConfig(**SMALL, augment_shift=2, **options))
        data = on_device(task, digits)
        state = task.init(data)
        state, metrics, finite = make_runner(TaskStep(task), 1)(
            state, call_batches(task, data, 200, 0, 1)
        )
        assert bool(finite) and all(np.isfinite(v).all() for v in metrics.values())
        return jax.tree.map(np.asarray, state.models["classifier"].params)

    off = step()
    for options in (
        {"pseudo_label_weight": 1.0, "pseudo_label_threshold": 1e-3},  # every image qualifies
        {"consistency_weight": 1.0},
        {"vat_weight": 1.0},
    ):
        on = step(**options)
        assert any(
            not np.array_equal(a, b)
            for a, b in zip(jax.tree.leaves(off), jax.tree.leaves(on), strict=True)
        ), options


def test_the_conv_sgan_trains_with_consistency_and_vat_beside_its_batchnorm(digits):
    from gan_jax.steps import TaskStep, make_runner

    task = SGANTask(
        SGANConfig.recipe("conv", **SMALL, augment_shift=1, consistency_weight=1.0, vat_weight=1.0)
    )
    data = on_device(task, digits)
    state = task.init(data)
    state, metrics, finite = make_runner(TaskStep(task), 1)(
        state, call_batches(task, data, 200, 0, 1)
    )
    assert bool(finite) and all(np.isfinite(v).all() for v in metrics.values())


def test_rotate_turns_about_the_centre_and_fills_what_comes_from_outside():
    image = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
    images = jnp.asarray(np.concatenate([image] * 3))
    turned = np.asarray(rotate(images, jnp.asarray([90.0, 0.0, -90.0]), background=-1.0))
    np.testing.assert_allclose(turned[0, ..., 0], np.rot90(image[0, ..., 0], -1), atol=1e-4)
    np.testing.assert_array_equal(turned[1], image[0])
    np.testing.assert_allclose(turned[2, ..., 0], np.rot90(image[0, ..., 0], 1), atol=1e-4)
    # 45 degrees: a 7x7 image's corners read from more than a pixel outside it (background), the
    # centre stays
    square = jnp.arange(49, dtype=jnp.float32).reshape(1, 7, 7, 1)
    diagonal = np.asarray(rotate(square, jnp.asarray([45.0]), background=-1.0))[0, ..., 0]
    assert diagonal[0, 0] == diagonal[6, 6] == -1.0 and diagonal[3, 3] == pytest.approx(24.0)


def test_cutout_blanks_a_square_at_its_corner_even_where_it_runs_off_the_image():
    images = jnp.ones((2, 6, 6, 1))
    cut = np.asarray(cutout(images, 3, jnp.asarray([[1, 2], [4, -1]]), background=0.0))[..., 0]
    expected = np.ones((2, 6, 6))
    expected[0, 1:4, 2:5] = 0.0
    expected[1, 4:6, 0:2] = 0.0  # rows 4-5 and column 0-1 of the square lie inside
    np.testing.assert_array_equal(cut, expected)


def test_the_strong_view_adds_rotation_and_cutout_only_when_asked(digits):
    base = dict(SMALL, augment_shift=1, pseudo_label_weight=1.0, strong_shift=2)
    views = {}
    for name, extra in (
        ("shift", {}),
        ("rotate", {"strong_rotate": 30.0}),
        ("cutout", {"strong_cutout": 10}),
    ):
        task = SGANTask(SGANConfig(**base, **extra))
        data = on_device(task, digits)
        batch = jax.tree.map(lambda x: x[0], call_batches(task, data, 200, 0, 1))
        prepared = task.feed.prepare(batch, jax.random.key(0))
        views[name] = np.asarray(prepared["unlabeled_strong"])
        np.testing.assert_array_equal(
            prepared["unlabeled_weak"], views.get("weak", prepared["unlabeled_weak"])
        )
        views["weak"] = np.asarray(prepared["unlabeled_weak"])  # the weak view never changes
    shift, rotated, cut = views["shift"], views["rotate"], views["cutout"]
    assert not np.array_equal(rotated, shift)
    assert (
        np.abs(rotated.sum((2, 3, 4)) - shift.sum((2, 3, 4))).max()
        < 0.1 * shift.sum((2, 3, 4)).min()
    )
    # the cutout only blanks (black is 0 for the mlp's [0, 1] pixels), never brightens
    assert (cut <= shift).all() and (cut < shift).any()
    with pytest.raises(ConfigError, match=r"strong_rotate must be in \[0, 180\] degrees, got -5"):
        SGANConfig(strong_rotate=-5)
    with pytest.raises(ConfigError, match="strong_cutout must be a non-negative integer, got 2.5"):
        SGANConfig(strong_cutout=2.5)
    with pytest.raises(ConfigError, match="vat_weight must be >= 0, got -1"):
        SGANConfig(vat_weight=-1.0)
    with pytest.raises(ConfigError, match="vat_epsilon must be > 0, got 0"):
        SGANConfig(vat_epsilon=0.0)
    with pytest.raises(ConfigError, match="consistency_weight must be >= 0, got -0.5"):
        SGANConfig(consistency_weight=-0.5)
    with pytest.raises(ConfigError, match="vat_epsilon must be > 0, got inf"):
        SGANConfig(vat_epsilon=float("inf"))
    with pytest.raises(ConfigError, match="vat_weight needs compute_dtype float32"):
        SGANConfig(vat_weight=1.0, compute_dtype="bfloat16")
