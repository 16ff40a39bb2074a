"""`gan_jax.tasks.sgan`: the semi-supervised GAN and its supervised baseline: labeled subsets per
task, models, optimizer, steps, evaluation, resume (their losses are in test_losses.py)."""

import dataclasses
import json

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import (
    SGANConfig,
    SGANTask,
    Split,
    SupervisedConfig,
    SupervisedTask,
    evaluate_run,
    train,
)
from gan_jax.api import run_info
from gan_jax.models import MLPClassifier, WeightNormDense, data_dependent_init
from gan_jax.steps import TaskStep, make_runner
from tests.feeding import call_batches, on_device
from tests.numerics import assert_one_step_close, assert_params_within_adam

SMALL = dict(labels=20, batch_size=10, epochs=1)


@pytest.fixture
def digits():
    """200 random uint8 images, 20 of each label (20 steps of 10 per epoch)."""
    rng = np.random.default_rng(1)
    return Split(
        rng.integers(0, 256, (200, 28, 28, 1), dtype=np.uint8),
        np.tile(np.arange(10, dtype=np.int32), 20),
    )


# ---- labeled subsets


def test_same_data_seed_gives_same_images_for_every_model(digits):
    subsets = [
        task.labeled_indices(digits.labels)
        for task in (
            SGANTask(SGANConfig(**SMALL, data_seeds=(2,))),
            SupervisedTask(SupervisedConfig.recipe("conv", **SMALL, data_seeds=(2,))),
        )
    ]
    np.testing.assert_array_equal(*subsets)


@pytest.mark.parametrize("batch_size", [10, 20, 40])
def test_labeled_batches_are_the_subset_tiled_and_reshuffled_per_copy(digits, batch_size):
    """An epoch's labeled order is whole permutations of the L labeled images, a fresh one per copy;
    so when B is a multiple of L every batch holds each labeled image exactly B / L times (the
    labelled term is the whole subset's loss at every step, as in Improved GAN's script)."""
    config = SupervisedConfig(**{**SMALL, "batch_size": batch_size}, data_seeds=(0, 3))
    task = SupervisedTask(config)
    order = np.asarray(task.feed.epoch_plan(0, len(digits.images))["labeled"])
    assert order.shape == (2, 200)  # [members, steps · B]
    for member in order:
        copies = member.reshape(-1, 20)
        np.testing.assert_array_equal(np.sort(copies, axis=1), np.tile(np.arange(20), (10, 1)))
        assert len({tuple(c) for c in copies}) == 10  # each copy shuffled afresh
        if batch_size % 20 == 0:
            for batch in member.reshape(-1, batch_size):
                np.testing.assert_array_equal(np.bincount(batch, minlength=20), batch_size // 20)
    assert not np.array_equal(order[0], order[1])  # each data seed its own order
    later = np.asarray(task.feed.epoch_plan(1, len(digits.images))["labeled"])
    assert not np.array_equal(order, later)  # and a new order each epoch


# ---- models


def test_mlp_optimizer_is_the_improved_gan_scripts_adam():
    """m̂ / sqrt(v̂ + 1e-8) (Lasagne's Adam in the script: epsilon inside the root),
    lr 3e-3, β 0.5/0.999."""
    tx = SGANTask(SGANConfig()).tx
    params = jnp.array([0.5, -0.2, 0.0])
    grads = [
        jnp.array([1e-3, -2.0, 0.0]),
        jnp.array([3e-4, 1.0, 0.0]),
        jnp.array([-1e-3, 0.5, 1e-6]),
    ]
    state, p = tx.init(params), params
    m = v = np.zeros(3)
    expected = np.asarray(params, np.float64)
    for t, g in enumerate(grads, start=1):
        updates, state = tx.update(g, state, p)
        p = p + updates
        g = np.asarray(g, np.float64)
        m, v = 0.5 * m + 0.5 * g, 0.999 * v + 0.001 * g * g
        expected = expected - 3e-3 * (m / (1 - 0.5**t)) / np.sqrt(v / (1 - 0.999**t) + 1e-8)
    np.testing.assert_allclose(p, expected, rtol=1e-5, atol=1e-8)
    # optax's default (epsilon outside the root) differs most where gradients are tiny
    default = SGANTask(SGANConfig(adam_eps=1e-8, adam_eps_root=0.0)).tx
    q, state = params, default.init(params)
    for g in grads:
        updates, state = default.update(g, state, q)
        q = q + updates
    assert not np.allclose(q[2], p[2], rtol=1e-3)


def test_features_after_noise_are_the_output_layers_input():
    images = jax.random.uniform(jax.random.PRNGKey(0), (4, 28, 28, 1))
    rngs = {"noise": jax.random.PRNGKey(1)}
    for after in (True, False):
        model = MLPClassifier(10, features_after_noise=after)
        variables = model.init({"params": jax.random.PRNGKey(2), **rngs}, images, train=False)
        logits, features = model.apply(variables, images, train=True, rngs=rngs)
        last = variables["params"]["WeightNormDense_5"]
        w = last["kernel"] * last["scale"] / jnp.sqrt(jnp.sum(jnp.square(last["kernel"]), axis=0))
        from_features = features @ w + last["bias"]
        assert np.allclose(from_features, logits, atol=1e-4) == after
        assert after or bool(jnp.all(features >= 0))  # before the noise: ReLU outputs
        eval_features = model.apply(variables, images, train=False)[1]
        plain = MLPClassifier(10).apply(variables, images, train=False)[1]
        np.testing.assert_allclose(eval_features, plain)


def test_data_dependent_init_normalizes_pre_activations_and_fixes_the_scale():
    layer = WeightNormDense(7)
    x = jax.random.normal(jax.random.PRNGKey(0), (300, 5)) * 3.0 + 1.0
    variables = data_dependent_init(layer, layer.init(jax.random.PRNGKey(1), x), x)
    y = layer.apply(variables, x)
    np.testing.assert_allclose(np.mean(y, axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.std(y, axis=0), 1.0, rtol=1e-3)
    grads = jax.grad(lambda p: jnp.sum(layer.apply({"params": p}, x) ** 2))(variables["params"])
    # scale is not trained by default
    assert np.all(grads["scale"] == 0) and np.any(grads["kernel"] != 0)
    trained = WeightNormDense(7, train_scale=True)
    grads = jax.grad(lambda p: jnp.sum(trained.apply({"params": p}, x) ** 2))(variables["params"])
    assert np.any(grads["scale"] != 0)


def test_sgan_mlp_init_is_data_dependent(digits):
    task = SGANTask(SGANConfig(**SMALL))
    data = on_device(task, digits)
    state = task.init(data)
    params = jax.tree.map(lambda x: x[0], state.models["classifier"].params)
    x = task.pixels(data["images"][:200])
    # first layer (noise off): unit variance within noise and sampling error
    first = jax.jit(
        lambda p: task.family.classifier.apply(
            {"params": p}, x, train=False, capture_intermediates=True
        )[1]
    )(params)
    pre = flax.traverse_util.flatten_dict(first["intermediates"])[
        ("WeightNormDense_0", "__call__")
    ][0]
    assert 0.5 < float(np.mean(np.std(pre, axis=0))) < 1.5
    shapes = task.init().models["classifier"].params  # the restore target has the same shapes
    assert jax.tree.map(jnp.shape, shapes) == jax.tree.map(
        jnp.shape, state.models["classifier"].params
    )


# ---- steps


def _run(task, data, steps):
    device = on_device(task, data)
    state = task.init(device)
    run = make_runner(TaskStep(task), steps)
    state, metrics, finite = run(state, call_batches(task, device, len(data.images), 0, steps))
    return jax.tree.map(np.asarray, state), jax.tree.map(np.asarray, metrics), bool(finite)


def _run_calls(task, data, calls):
    """`calls` compiled calls of one step each: (the state after the first, the last state, each
    call's metrics stacked)."""
    device = on_device(task, data)
    state = task.init(device)
    run = make_runner(TaskStep(task), 1)
    first, metrics = None, []
    for call in range(calls):
        state, step_metrics, finite = run(
            state, call_batches(task, device, len(data.images), call, 1)
        )
        assert bool(finite)
        first = jax.tree.map(np.asarray, state) if first is None else first  # the runner donates
        metrics.append(jax.tree.map(np.asarray, step_metrics))
    return (
        first,
        jax.tree.map(np.asarray, state),
        jax.tree.map(lambda *m: np.concatenate(m), *metrics),
    )


@pytest.mark.parametrize("kind", ["sgan", "supervised"])
def test_vmapped_seeds_equal_seed_by_seed_runs(kind, digits):
    config_type, task_type = (
        (SGANConfig, SGANTask) if kind == "sgan" else (SupervisedConfig, SupervisedTask)
    )
    first, together, metrics = _run_calls(
        task_type(config_type(**SMALL, data_seeds=(0, 3))), digits, 3
    )
    config = task_type(config_type(**SMALL)).config
    lr, b1 = config.learning_rate, config.beta1
    for member, seed in (
        (1, 3),
    ):  # the second member: an indexing mistake would show there (one compile less)
        alone_first, alone, alone_metrics = _run_calls(
            task_type(config_type(**SMALL, data_seeds=(seed,))), digits, 3
        )
        # The batched matrix products sum in another order: the first step (one state, one batch)
        # differs by rounding, later steps only within Adam's bound (tests/numerics.py).
        for key in metrics:
            np.testing.assert_allclose(metrics[key][0, member], alone_metrics[key][0, 0], rtol=2e-5)
        member_of = lambda tree, k: jax.tree.map(lambda x: x[k], tree.models)
        assert_one_step_close(member_of(first, member), member_of(alone_first, 0), lr, b1)
        assert_params_within_adam(member_of(together, member), member_of(alone, 0), lr, 3, b1)
    first = jax.tree.leaves(together.models["classifier"].params)[0]
    assert not np.allclose(first[0], first[1])  # the members really differ


def test_sgan_step_updates_both_models_and_metrics_are_sane(digits):
    task = SGANTask(SGANConfig(**SMALL))
    before = task.init(on_device(task, digits))
    after, metrics, finite = _run(task, digits, 2)
    assert finite and int(after.step) == 2
    assert set(metrics) == {"sup_loss", "unsup_loss", "g_loss"}
    assert metrics["sup_loss"].shape == (2, 1)
    assert (
        metrics["sup_loss"][0, 0] > 0
        and metrics["unsup_loss"][0, 0] > 0
        and metrics["g_loss"][0, 0] >= 0
    )
    for name in ("classifier", "generator"):
        changed = [
            not np.allclose(a, b)
            for a, b in zip(
                jax.tree.leaves(before.models[name].params),
                jax.tree.leaves(after.models[name].params),
                strict=True,
            )
        ]
        assert any(changed), name
    assert jax.tree.leaves(after.models["classifier"].ema)  # the EMA is kept


@pytest.mark.parametrize("term", ["entropy_weight", "balance_weight"])
def test_an_extra_unlabeled_term_changes_the_step(digits, term):
    plain, _, _ = _run(SGANTask(SGANConfig(**SMALL)), digits, 1)
    with_term, metrics, finite = _run(SGANTask(SGANConfig(**SMALL, **{term: 1.0})), digits, 1)
    assert finite and set(metrics) == {"sup_loss", "unsup_loss", "g_loss"}
    differ = lambda name: (
        not all(
            np.array_equal(a, b)
            for a, b in zip(
                jax.tree.leaves(plain.models[name].params),
                jax.tree.leaves(with_term.models[name].params),
                strict=True,
            )
        )
    )
    assert differ("classifier")
    assert differ("generator")  # through the updated classifier: the term reaches it only so


def test_ema_is_the_bias_corrected_average():
    from gan_jax.steps import ModelState, ema_params, update_ema

    state = ModelState(params={"w": jnp.array(0.0)}, opt_state=(), ema={"w": jnp.array(0.0)})
    for value in (1.0, 2.0):
        state = update_ema(state.replace(params={"w": jnp.array(value)}), 0.5)
    # ema = 0.25·1 + 0.5·2 = 1.25, corrected by 1 - 0.5² → 5/3, the weighted mean (1·1 + 2·2)/3
    np.testing.assert_allclose(ema_params(state, 0.5, 2)["w"], 5 / 3, rtol=1e-6)
    np.testing.assert_allclose(ema_params(state, 0.5, 0)["w"], 2.0)


@pytest.mark.slow
def test_conv_family_trains_and_evaluates(digits):
    task = SGANTask(SGANConfig.recipe("conv", **SMALL))
    state, metrics, finite = _run(task, digits, 2)
    assert finite and task.steps_per_call(100) == (1 if jax.default_backend() == "cpu" else 100)
    result = task.evaluate(state, Split(digits.images[:30], digits.labels[:30]))
    assert 0.0 <= result["test_accuracy"][0] <= 1.0
    images = task.sample(state, task.fixed_noise(4))
    assert images.shape == (4, 28, 28, 1) and images.min() >= -1 and images.max() <= 1


def test_evaluate_counts_correct_argmax_over_a_padded_last_chunk(digits):
    task = SupervisedTask(SupervisedConfig(**SMALL, ema_decay=0.0))
    state = task.init(on_device(task, digits))
    test = Split(digits.images[:123], digits.labels[:123])
    params = jax.tree.map(lambda x: x[0], state.models["classifier"].params)
    logits, _, _ = task.classify(
        params, {}, task.pixels(jnp.asarray(test.images)), None, train=False
    )
    expected = float(np.mean(np.argmax(logits, -1) == test.labels))
    # no EMA: no raw row
    assert task.evaluate(state, test) == {"test_accuracy": [pytest.approx(expected)]}


def test_evaluate_reports_the_average_and_the_raw_parameters(digits):
    task = SGANTask(SGANConfig(**SMALL, ema_decay=0.5))
    state, _, _ = _run(task, digits, 3)
    test = Split(digits.images[:100], digits.labels[:100])
    result = task.evaluate(state, test)
    raw = SGANTask(SGANConfig(**SMALL, ema_decay=0.0)).evaluate(state, test)["test_accuracy"]
    assert (
        set(result) == {"test_accuracy", "test_accuracy_raw"} and result["test_accuracy_raw"] == raw
    )


def test_predict_and_embed_give_each_members_classes_and_features(digits):
    task = SGANTask(SGANConfig(**{**SMALL, "data_seeds": (0, 3)}, ema_decay=0.5))
    state, _, _ = _run(task, digits, 3)
    test = Split(digits.images[:123], digits.labels[:123])
    averaged, raw = task.predict(state, test.images), task.predict(state, test.images, raw=True)
    assert averaged.shape == raw.shape == (2, 123) and averaged.dtype == np.int32
    assert averaged.min() >= 0 and averaged.max() < 10
    result = task.evaluate(state, test)
    assert list(np.mean(averaged == test.labels, axis=1)) == pytest.approx(result["test_accuracy"])
    assert list(np.mean(raw == test.labels, axis=1)) == pytest.approx(result["test_accuracy_raw"])
    params = jax.tree.map(lambda x: x[1], state.models["classifier"].params)  # member 1, raw
    logits, features, _ = task.classify(
        params, {}, task.pixels(jnp.asarray(test.images)), None, train=False
    )
    np.testing.assert_array_equal(raw[1], np.argmax(logits, -1))
    embedded = task.embed(state, test.images, raw=True)
    assert embedded.shape == (2, 123, features.shape[-1]) and embedded.dtype == np.float32
    # vmapped, jitted: float reorder
    np.testing.assert_allclose(embedded[1], features, rtol=1e-4, atol=1e-5)
    assert not np.allclose(task.embed(state, test.images)[1], embedded[1])  # the average differs


# ---- the loop, resume, evaluate


@pytest.mark.slow
def test_sgan_resume_is_bit_identical(digits, tmp_path):
    config = SGANConfig(**{**SMALL, "epochs": 2}, steps_per_call=2)
    test = Split(digits.images[:50], digits.labels[:50])
    train(config, tmp_path / "straight", data=digits, test_data=test, progress=False)
    train(
        dataclasses.replace(config, steps=6),
        tmp_path / "resumed",
        data=digits,
        test_data=test,
        progress=False,
    )
    train(config, tmp_path / "resumed", data=digits, test_data=test, progress=False)
    assert (
        run_info(tmp_path / "straight")["params_sha256"]
        == run_info(tmp_path / "resumed")["params_sha256"]
    )
    rows = [
        json.loads(line)
        for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["epoch"] for r in rows] == [1, 2] and all(r["data_seed"] == 0 for r in rows)
    assert (tmp_path / "straight" / "metrics.jsonl").read_bytes() == (
        tmp_path / "resumed" / "metrics.jsonl"
    ).read_bytes()
    result = evaluate_run(tmp_path / "straight", test)
    # final parameters, as logged at the end
    assert result["test_accuracy"] == rows[-1]["test_accuracy"]


def test_multi_seed_run_writes_one_row_per_seed_and_evaluates_each(digits, tmp_path):
    config = SupervisedConfig(**SMALL, data_seeds=(4, 1), steps=3)
    test = Split(digits.images[:40], digits.labels[:40])
    train(config, tmp_path, data=digits, test_data=test, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["data_seed"] for r in rows] == [4, 1] and all(r["partial"] for r in rows)
    result = evaluate_run(tmp_path, test)
    assert result["data_seeds"] == [4, 1] and result["test_accuracy"] == [
        r["test_accuracy"] for r in rows
    ]
    assert result["test_accuracy_mean"] == pytest.approx(np.mean(result["test_accuracy"]))
