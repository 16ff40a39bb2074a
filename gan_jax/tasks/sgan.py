"""Few-label classifiers as tasks: the supervised baseline and the semi-supervised GAN.

Both train one classifier per data seed ("member"): its labeled images are a class-balanced
subset picked by that seed (`gan_jax.data.labeled_subset`), tiled to fill each epoch with a fresh
shuffle per copy (Improved GAN's schedule: an epoch is `len(train) // batch_size` steps). Several
data seeds train at once as independent members of one `jax.vmap`-ed program; every array of the
state has a leading member axis, and member d computes exactly what a run of seed d alone does.

A member's random streams are `fold_in(<stream key of config.seed>, data_seed)`.

`SGANTask` adds the generator and the unlabeled images (the whole training split). One step:
1. Classifier update on `CE(labeled) + w · ½·BCE(D(unlabeled) → real, D(G(z₁)) → fake)`, where
   D(x) = sigmoid(logsumexp(class logits)); its EMA follows.
2. Generator update through the *updated* classifier: feature matching against a second,
   independently shuffled unlabeled batch (or the non-saturating loss), on fresh noise z₂.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import data as data_lib
from gan_jax.config import SGANConfig, SupervisedConfig
from gan_jax.feed import FewLabelFeed, PixelRange, scale_pixels
from gan_jax.losses import (
    SGAN_GENERATOR_LOSSES,
    class_balance_loss,
    conditional_entropy,
    consistency_loss,
    cross_entropy,
    pseudo_label_loss,
    unsupervised_loss,
    virtual_adversarial_loss,
)
from gan_jax.models import (
    ConvClassifier,
    ConvGenerator,
    MLPClassifier,
    MLPGenerator,
    data_dependent_init,
)
from gan_jax.parallel import shard_batch
from gan_jax.steps import (
    Metrics,
    ModelState,
    TrainState,
    apply_gradients,
    create_model_state,
    ema_params,
    map_in_chunks,
    over_members,
    update_ema,
)
from gan_jax.tasks.base import GenerativeTask, SeededTask, Stream

DDI_EXAMPLES = 500  # training images of the data-dependent initialization (Improved GAN's count)
EVAL_CHUNK = 500


class Family(NamedTuple):
    """What differs between model families: modules, pixel range, noise, data-dependent init.

    In `FAMILIES` the modules are classes; `SupervisedTask.family` holds them built for the task's
    dataset (classes, image shape) and config.
    """

    classifier: Any  # a classifier module: images → (class logits, features)
    generator: Any  # a generator module: noise → images
    zero_one_pixels: bool  # True: images in [0, 1]; False: in [-1, 1]
    uniform_noise: bool  # True: z ~ U(0, 1); False: z ~ N(0, 1)
    ddi: bool
    classifier_batchnorm: bool  # True: labeled, unlabeled and fake batches get separate passes


FAMILIES = {
    "mlp": Family(
        MLPClassifier,
        MLPGenerator,
        zero_one_pixels=True,
        uniform_noise=True,
        ddi=True,
        classifier_batchnorm=False,
    ),
    "conv": Family(
        ConvClassifier,
        ConvGenerator,
        zero_one_pixels=False,
        uniform_noise=False,
        ddi=False,
        classifier_batchnorm=True,
    ),
}


@dataclasses.dataclass(frozen=True)
class FewLabelTask(SeededTask):
    """What the supervised baseline and the SGAN share: a classifier per data seed ("member") of the
    config's family, its feed of labelled subsets, its update, its evaluation. A subclass adds its
    `feed` (`few_label_feed`), `member_train_step` and what `init_member` builds besides the
    classifier.
    """

    config: SupervisedConfig

    needs_test_split: ClassVar[bool] = True

    # ---- configuration-derived pieces
    @functools.cached_property
    def family(self) -> Family:
        """The config's model family, its modules sized for the dataset (classes, image shape)."""
        family = FAMILIES[self.config.model]
        classifier: dict[str, Any] = {"num_classes": self.num_classes}
        generator: dict[str, Any] = {"image_shape": self.image_shape}
        if getattr(self.config, "fm_after_noise", False) and self.config.model == "mlp":
            classifier["features_after_noise"] = True
        if self.config.compute_dtype != "float32":
            classifier["dtype"] = generator["dtype"] = jnp.dtype(self.config.compute_dtype)
        return family._replace(
            classifier=family.classifier(**classifier), generator=family.generator(**generator)
        )

    @functools.cached_property
    def tx(self) -> optax.GradientTransformation:
        """Adam for each model; `adam_eps_root` puts epsilon inside the square root, as the
        Improved-GAN script's Adam does (update m̂ / sqrt(v̂ + 1e-8))."""
        c = self.config
        return optax.adam(c.learning_rate, b1=c.beta1, eps=c.adam_eps, eps_root=c.adam_eps_root)

    @property
    def members(self) -> tuple[dict[str, int], ...]:
        """One dict per ensemble member, naming its data seed (rows of metrics.jsonl carry it)."""
        return tuple({"data_seed": seed} for seed in self.config.data_seeds)

    @property
    def num_members(self) -> int:
        return len(self.config.data_seeds)

    @property
    def convolutional(self) -> bool:
        return self.config.model == "conv"

    def member_key(self, stream: int, data_seed: jax.Array) -> jax.Array:
        """The stream of one member: `fold_in(key(stream), data_seed)`."""
        return jax.random.fold_in(self.key(stream), data_seed)

    # ---- data
    def few_label_feed(self, unlabeled: bool, **strong_view: Any) -> FewLabelFeed:
        """Each member's labelled subset (`unlabeled`: and all training images as unlabelled
        batches; `strong_view`, `FewLabelFeed`'s `pseudo_views` and `strong_*` fields: and their
        weak and strong views), pixels in the family's range, labelled images shifted by up to
        `augment_shift`."""
        c = self.config
        return FewLabelFeed(
            c.seed,
            tuple(c.data_seeds),
            c.labels,
            c.batch_size,
            self.num_classes,
            self.image_shape,
            self.pixel_range,
            unlabeled=unlabeled,
            run=self.run_names,
            augment_shift=c.augment_shift,
            **strong_view,
        )

    @property
    def pixel_range(self) -> PixelRange:
        """The family's pixel range: `unit` [0, 1] (mlp) or `signed` [-1, 1] (conv)."""
        return "unit" if self.family.zero_one_pixels else "signed"

    def pixels(self, images_u8: jax.Array) -> jax.Array:
        """uint8 images → float32 in the family's range ([0, 1] for mlp, [-1, 1] for conv)."""
        return scale_pixels(images_u8, self.pixel_range)

    def labeled_indices(self, labels: np.ndarray) -> np.ndarray:
        """int `[members, labels]`: each member's labelled subset of the training split (the same
        for both tasks: a function of the labels, the count and the data seeds)."""
        return self.few_label_feed(unlabeled=False).labeled_indices(labels)

    # ---- state
    def init_data(self, data: dict[str, jax.Array]) -> jax.Array:
        """The training images `[N, H, W, C]`: with them (the loop's `init(feed arrays)`) the mlp
        classifier gets its data-dependent initialization on 500 training images chosen by the
        member's seed; without (`init()`), only shapes are right (a restore target)."""
        return data["images"]

    def init_models(self, unlabeled: jax.Array | None) -> dict[str, ModelState]:
        """Every member's fresh models, with a leading member axis."""
        seeds = jnp.asarray(self.config.data_seeds, jnp.int32)
        init_member = over_members(self.init_member, self.num_members, in_axes=(0, None))
        return init_member(seeds, unlabeled)

    def init_keys(self, data_seed: jax.Array) -> jax.Array:
        """A member's init keys: classifier, data-dependent init, classifier noise, generator."""
        return jax.random.split(self.member_key(Stream.INIT, data_seed), 4)

    def init_member(
        self, data_seed: jax.Array, unlabeled: jax.Array | None
    ) -> dict[str, ModelState]:
        """One member's fresh classifier (data-dependent for the mlp family, given images)."""
        c_key, ddi_key, noise_key, _ = self.init_keys(data_seed)
        classifier = self.family.classifier
        images = jnp.zeros((1, *self.image_shape))
        variables = classifier.init({"params": c_key, "noise": noise_key}, images, train=False)
        if unlabeled is not None and self.family.ddi:
            chosen = jax.random.choice(
                ddi_key, unlabeled.shape[0], (min(DDI_EXAMPLES, unlabeled.shape[0]),), replace=False
            )
            variables = data_dependent_init(
                classifier,
                variables,
                self.pixels(unlabeled[chosen]),
                train=True,
                rngs={"noise": noise_key},
            )
        return {
            "classifier": create_model_state(variables, self.tx, ema=bool(self.config.ema_decay))
        }

    # ---- the step
    def classify(
        self,
        params: Any,
        batch_stats: Any,
        images: jax.Array,
        key: jax.Array | None,
        train: bool = True,
    ):
        """`(class_logits [B, num_classes], features [B, F], new batch_stats)`; noise and dropout
        only when `train`."""
        (logits, features), updates = self.family.classifier.apply(
            {"params": params, "batch_stats": batch_stats},
            images,
            train=train,
            rngs={"noise": key} if train else {},
            mutable=["batch_stats"],
        )
        return logits, features, updates.get("batch_stats", batch_stats)

    def _update_classifier(self, c: ModelState, loss_fn) -> tuple[ModelState, Any]:
        """Applies the gradient of `loss_fn(params) -> (loss, (batch_stats, aux))`; keeps the
        EMA."""
        (loss, (stats, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(c.params)
        c = apply_gradients(c, grads, self.tx, batch_stats=stats)
        if self.config.ema_decay:
            c = update_ema(c, self.config.ema_decay)
        return c, (loss, aux)

    def train_step(
        self, models: dict[str, ModelState], batch: dict[str, jax.Array], key: jax.Array
    ) -> tuple[dict[str, ModelState], Metrics]:
        """Every member's `member_train_step` on its batch (vmapped; every array of `models` and
        `batch` has a leading member axis); member d's key is `fold_in(key, data_seeds[d])`."""
        seeds = jnp.asarray(self.config.data_seeds, jnp.int32)

        def member(models, batch, seed):
            return self.member_train_step(models, batch, jax.random.fold_in(key, seed))

        return over_members(member, self.num_members)(models, batch, seeds)

    def member_train_step(
        self, models: dict[str, ModelState], batch: dict[str, jax.Array], key: jax.Array
    ) -> tuple[dict[str, ModelState], Metrics]:
        """One member's update on its prepared batch."""
        raise NotImplementedError

    # ---- evaluation
    def eval_params(self, state: TrainState) -> Any:
        """The classifier parameters evaluation uses (the bias-corrected EMA when enabled), per
        member."""
        c = state.models["classifier"]
        return jax.vmap(lambda m: ema_params(m, self.config.ema_decay, state.step))(c)

    def evaluate(self, state: TrainState, test: data_lib.Split) -> dict[str, list[float]]:
        """Test accuracy of each member (argmax of the logits, noise off): `test_accuracy` with the
        evaluation parameters (`eval_params`), and with an EMA also `test_accuracy_raw`, the raw
        ones."""
        images = jnp.asarray(data_lib.check_images(test.images, self.image_shape))
        labels = np.asarray(test.labels, np.int32)
        which = {"test_accuracy": False}
        if self.config.ema_decay:
            which["test_accuracy_raw"] = True
        return {
            key: [
                float(n) / len(labels)
                for n in np.sum(self._predict(state, images, raw) == labels, 1)
            ]
            for key, raw in which.items()
        }

    def report(
        self, state: TrainState, test: data_lib.Split | None = None, num_samples: int = 0
    ) -> dict[str, Any]:
        """Test accuracy on `test` (default: the test split of the config's dataset and source): a
        number for one data seed; a list in data-seed order, with mean and std, for several."""
        test = self.test_split(test)
        accuracy = self.evaluate(state, test)["test_accuracy"]
        result = {
            "model": self.config.model,
            "labels": self.config.labels,
            "data_seeds": list(self.config.data_seeds),
            "num_test": len(test.images),
        }
        if len(accuracy) == 1:
            return {**result, "test_accuracy": accuracy[0]}
        return {
            **result,
            "test_accuracy": accuracy,
            "test_accuracy_mean": float(np.mean(accuracy)),
            "test_accuracy_std": float(np.std(accuracy, ddof=1)),
        }

    def predict(self, state: TrainState, images: np.ndarray, raw: bool = False) -> np.ndarray:
        """int32 `[members, N]`: each member's predicted class (argmax of its logits, noise off) of
        `images`, uint8 `[N, H, W, C]`, with the evaluation parameters (`eval_params`) or, with
        `raw`, the current ones. Member d is data seed `config.data_seeds[d]`."""
        return self._predict(
            state, jnp.asarray(data_lib.check_images(images, self.image_shape)), raw
        )

    def embed(self, state: TrainState, images: np.ndarray, raw: bool = False) -> np.ndarray:
        """float32 `[members, N, F]`: each member's features of `images` (uint8 `[N, H, W, C]`), the
        layer the output layer reads (the one feature matching compares), noise off, with the
        evaluation parameters or, with `raw`, the current ones."""
        c = state.models["classifier"]
        params = c.params if raw else self.eval_params(state)
        on_device = jnp.asarray(data_lib.check_images(images, self.image_shape))
        return np.asarray(_embed(self, params, c.batch_stats, on_device), np.float32)

    def _predict(self, state: TrainState, images: jax.Array, raw: bool) -> np.ndarray:
        c = state.models["classifier"]
        params = c.params if raw else self.eval_params(state)
        return np.asarray(_predict(self, params, c.batch_stats, images), np.int32)

    def _member_outputs(self, params, batch_stats, images):
        """`(class_logits [N, K], features [N, F])` of uint8 `images`, noise off, in chunks."""
        return map_in_chunks(
            lambda x: self.classify(params, batch_stats, self.pixels(x), None, train=False)[:2],
            images,
            EVAL_CHUNK,
        )

    def _member_predictions(self, params, batch_stats, images):
        return jnp.argmax(self._member_outputs(params, batch_stats, images)[0], axis=-1)

    def _member_features(self, params, batch_stats, images):
        return self._member_outputs(params, batch_stats, images)[1]


@dataclasses.dataclass(frozen=True)
class SupervisedTask(FewLabelTask):
    """The classifier trained on its labeled subset alone (no generator, no unlabeled images)."""

    config: SupervisedConfig

    config_type: ClassVar[type[SupervisedConfig]] = SupervisedConfig
    loss_keys: ClassVar[tuple[str, ...]] = ("loss",)
    # (real/fake loss, generator loss) for the collapse guard; None: not adversarial
    adversarial_losses: ClassVar[tuple[str, str] | None] = None

    @functools.cached_property
    def feed(self) -> FewLabelFeed:
        """Each member's labelled subset."""
        return self.few_label_feed(unlabeled=False)

    def member_train_step(
        self, models: dict[str, ModelState], batch: dict[str, jax.Array], key: jax.Array
    ) -> tuple[dict[str, ModelState], Metrics]:
        """One member's update on `batch`: `labeled` float `[B, H, W, C]` (family range), `labels`
        int32 `[B]` in 0..num_classes-1."""
        c = models["classifier"]

        def loss_fn(params):
            logits, _, stats = self.classify(params, c.batch_stats, batch["labeled"], key)
            return cross_entropy(logits, batch["labels"]), (stats, None)

        c, (loss, _) = self._update_classifier(c, loss_fn)
        return {**models, "classifier": c}, {"loss": loss}


@dataclasses.dataclass(frozen=True)
class SGANTask(GenerativeTask, FewLabelTask):
    """The semi-supervised GAN (see the module docstring)."""

    config: SGANConfig

    config_type: ClassVar[type[SGANConfig]] = SGANConfig
    loss_keys: ClassVar[tuple[str, ...]] = ("sup_loss", "unsup_loss", "g_loss")
    adversarial_losses: ClassVar[tuple[str, str] | None] = ("unsup_loss", "g_loss")

    @functools.cached_property
    def feed(self) -> FewLabelFeed:
        """Each member's labelled subset, and all training images as unlabelled batches (with
        the pseudo-label term: and their weak and strong views)."""
        c = self.config
        if not self.uses_views:
            return self.few_label_feed(True)
        return self.few_label_feed(
            True,
            pseudo_views=True,
            strong_shift=c.strong_shift,
            strong_rotate=c.strong_rotate,
            strong_cutout=c.strong_cutout,
        )

    @property
    def uses_views(self) -> bool:
        """Whether the unlabelled images come with weak and strong views (pseudo-labels or
        consistency)."""
        return bool(self.config.pseudo_label_weight or self.config.consistency_weight)

    def init_member(
        self, data_seed: jax.Array, unlabeled: jax.Array | None
    ) -> dict[str, ModelState]:
        """One member's classifier (`FewLabelTask.init_member`) and generator."""
        g_key = self.init_keys(data_seed)[3]
        noise = jnp.zeros((1, self.config.noise_dim))
        g_vars = self.family.generator.init(g_key, noise, train=False)
        generator = create_model_state(g_vars, self.tx)
        return {**super().init_member(data_seed, unlabeled), "generator": generator}

    @property
    def generator(self) -> nn.Module:
        return self.family.generator

    @property
    def zero_one_pixels(self) -> bool:
        return self.family.zero_one_pixels

    def noise(self, key: jax.Array, num: int) -> jax.Array:
        """Generator input `[num, noise_dim]`: U(0, 1) for mlp, N(0, 1) for conv."""
        if self.family.uniform_noise:
            return jax.random.uniform(key, (num, self.config.noise_dim), jnp.float32)
        return super().noise(key, num)

    def generator_variables(self, state: TrainState, member: int = 0) -> dict:
        """The parameters and BatchNorm statistics of `member`'s generator (no EMA)."""
        g = state.models["generator"]
        return jax.tree.map(lambda x: x[member], {"params": g.params, "batch_stats": g.batch_stats})

    def _classify_parts(
        self,
        params: Any,
        batch_stats: Any,
        parts: tuple[jax.Array, ...],
        part_keys: list[jax.Array],
    ) -> tuple[list[jax.Array], Any]:
        """The logits of each part (images `[B, H, W, C]`) and the new BatchNorm statistics; a
        classifier with BatchNorm sees each part on its own (its own batch statistics), one without
        sees them concatenated (the same function, bigger matrix products)."""
        if self.family.classifier_batchnorm:
            stats, outputs = batch_stats, []
            for part, part_key in zip(parts, part_keys, strict=True):
                logits, _, stats = self.classify(params, stats, part, part_key)
                outputs.append(logits)
            return outputs, stats
        logits, _, stats = self.classify(params, batch_stats, jnp.concatenate(parts), part_keys[0])
        return jnp.split(logits, len(parts)), stats

    def _classifier_objective(
        self, outputs: list[jax.Array], labels: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`(loss, sup, unsup)` from the logits `[B, K]` of the labelled, unlabelled and generated
        parts (and with `uses_views`, the weak and strong views): the supervised cross-entropy,
        the real/fake term, and the optional entropy, balance, pseudo-label and consistency
        terms."""
        c = self.config
        lab, unl, fake = outputs[:3]
        sup, unsup = cross_entropy(lab, labels), unsupervised_loss(unl, fake)
        loss = sup + c.unlabeled_weight * unsup
        if c.entropy_weight:
            loss = loss + c.entropy_weight * conditional_entropy(unl)
        if c.balance_weight:
            loss = loss + c.balance_weight * class_balance_loss(unl)
        if c.pseudo_label_weight:
            weak, strong = outputs[3:]
            threshold = c.pseudo_label_threshold
            term = pseudo_label_loss(weak, strong, threshold, c.pseudo_label_align)
            loss = loss + c.pseudo_label_weight * term
        if c.consistency_weight:
            loss = loss + c.consistency_weight * consistency_loss(*outputs[3:])
        return loss, sup, unsup

    def _vat_term(self, params: Any, batch_stats: Any, images: jax.Array, key: jax.Array):
        """`virtual_adversarial_loss` of the classifier on `images` `[B, H, W, C]`, its noise
        fixed by one key for every pass (their BatchNorm statistics are dropped)."""
        noise_key, direction_key = jax.random.split(key)

        def logits_fn(x):
            return self.classify(params, batch_stats, x, noise_key)[0]

        return virtual_adversarial_loss(logits_fn, images, direction_key, self.config.vat_epsilon)

    def member_train_step(
        self, models: dict[str, ModelState], batch: dict[str, jax.Array], key: jax.Array
    ) -> tuple[dict[str, ModelState], Metrics]:
        """One member's alternating step. `batch`: `labeled`, `unlabeled`, `unlabeled_g` float
        `[B, H, W, C]` in the family's range, `labels` int32 `[B]`."""
        keys = jax.random.split(key, 7)
        c, g = models["classifier"], models["generator"]
        batch_size = batch["labeled"].shape[0]
        fakes, g_stats = self._generate_train(g, shard_batch(self.noise(keys[0], batch_size)))
        fakes = jax.lax.stop_gradient(fakes)
        g = dataclasses.replace(g, batch_stats=g_stats)

        parts: tuple[jax.Array, ...] = (batch["labeled"], batch["unlabeled"], fakes)
        part_keys = list(keys[1:4])
        if self.uses_views:  # the weak and strong views; the other keys stay as they were
            parts += (batch["unlabeled_weak"], batch["unlabeled_strong"])
            part_keys += list(jax.random.split(jax.random.fold_in(key, len(keys)), 2))
        vat_key = jax.random.fold_in(key, len(keys) + 1)

        def classifier_loss(params):
            outputs, stats = self._classify_parts(params, c.batch_stats, parts, part_keys)
            loss, sup, unsup = self._classifier_objective(outputs, batch["labels"])
            if self.config.vat_weight:
                vat = self._vat_term(params, c.batch_stats, batch["unlabeled"], vat_key)
                loss = loss + self.config.vat_weight * vat
            return loss, (stats, (sup, unsup))

        c, (_, (sup, unsup)) = self._update_classifier(c, classifier_loss)

        objective = SGAN_GENERATOR_LOSSES[self.config.g_loss]
        real_features = None
        if objective.real_features:
            _, real_features, _ = self.classify(
                c.params, c.batch_stats, batch["unlabeled_g"], keys[4]
            )
            real_features = jax.lax.stop_gradient(real_features)

        def generator_loss(params):
            z = shard_batch(self.noise(keys[5], batch_size))
            fakes, stats = self._generate_train(g, z, params=params)
            logits, features, _ = self.classify(c.params, c.batch_stats, fakes, keys[6])
            return objective.loss(logits, features, real_features), stats

        (g_loss, g_stats), grads = jax.value_and_grad(generator_loss, has_aux=True)(g.params)
        g = apply_gradients(g, grads, self.tx, batch_stats=g_stats)
        return {"classifier": c, "generator": g}, {
            "sup_loss": sup,
            "unsup_loss": unsup,
            "g_loss": g_loss,
        }


@functools.partial(jax.jit, static_argnums=0)
def _predict(task: FewLabelTask, params: Any, batch_stats: Any, images: jax.Array) -> jax.Array:
    """int `[members, N]`: each member's argmax prediction of `images`."""
    return over_members(task._member_predictions, task.num_members, in_axes=(0, 0, None))(
        params, batch_stats, images
    )


@functools.partial(jax.jit, static_argnums=0)
def _embed(task: FewLabelTask, params: Any, batch_stats: Any, images: jax.Array) -> jax.Array:
    """float `[members, N, F]`: each member's features of `images`."""
    return over_members(task._member_features, task.num_members, in_axes=(0, 0, None))(
        params, batch_stats, images
    )
