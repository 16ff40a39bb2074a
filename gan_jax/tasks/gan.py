"""The tutorial GAN and its conditional variant as tasks: models, losses, the alternating step.

The adversarial objective is `config.loss`, an entry of `gan_jax.losses.GAN_LOSSES`. With one
critic step and no gradient penalty (the default non-saturating loss, or hinge), one step, given
real images (and, for the cGAN, their digits) and a key, is fused:
1. Generate fakes G(z) in training mode, keeping G's VJP (one generator forward per step); the
   cGAN draws each fake's digit uniformly.
2. Discriminator update on the real and fake logits, with the fakes held fixed.
3. Generator update: its loss through the *updated* discriminator, its gradient with respect to
   the fakes pulled back through G's saved VJP; then the generator's EMA, if kept.
Otherwise (`critic_steps` > 1, or WGAN-GP) a step is `critic_steps` discriminator updates, each on
its own real batch and fresh fakes, then one generator update on fresh noise.
Each model has its own `optax.adam` state. The models are `gan_jax.models.dcgan_for` the dataset's
image shape: the tutorial's below 64 px, the DCGAN paper's at 64 px. G's BatchNorm statistics come
from the generator update's G forward. A discriminator with BatchNorm (the paper's) scores the
real and the fake images as two batches, each normalized by its own statistics (as the PyTorch
DCGAN example does), and keeps the running statistics of its update's two passes (the generator
update's pass through D leaves them); a discriminator without (the tutorial's) scores both as one
batch.
`discriminator_update` and `generator_update` are the two halves as separate pure functions.
Noise, sampling, the sample grid and the fresh state are `gan_jax.tasks.base.GenerativeTask`'s.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gan_jax import data as data_lib
from gan_jax.config import CGANConfig, FeatureNetConfig, GANConfig
from gan_jax.errors import DataError
from gan_jax.features import feature_net_config, load_feature_network
from gan_jax.feed import ImageFeed
from gan_jax.losses import GAN_LOSSES, GANLoss, gradient_penalty
from gan_jax.models import dcgan_for
from gan_jax.parallel import shard_batch
from gan_jax.steps import (
    Metrics,
    ModelState,
    TrainState,
    apply_gradients,
    create_model_state,
    ema_params,
    update_ema,
)
from gan_jax.tasks.base import GenerativeTask, SeededTask, Stream


@dataclasses.dataclass(frozen=True)
class GANTask(GenerativeTask, SeededTask):
    """Pure functions of the GAN for one config; usable from a notebook without the loop."""

    config: GANConfig
    fast_grad: bool = True
    config_type: ClassVar[type[GANConfig]] = GANConfig

    # What the host loop reads besides the methods below.
    loss_keys: ClassVar[tuple[str, ...]] = ("d_loss", "g_loss")
    members: ClassVar[tuple[dict[str, int], ...]] = ({},)  # one model pair, no ensemble axis
    needs_test_split: ClassVar[bool] = False

    @property
    def gan_loss(self) -> GANLoss:
        """The config's adversarial objective (`GAN_LOSSES[config.loss]`)."""
        return GAN_LOSSES[self.config.loss]

    @property
    def adversarial_losses(self) -> tuple[str, str] | None:
        """(real/fake loss, generator loss) for the collapse guard; None where the loss is not the
        BCE the guard is calibrated for."""
        return ("d_loss", "g_loss") if self.gan_loss.collapse_guard else None

    @property
    def fused(self) -> bool:
        """Whether a step is the fused one (one critic step, no gradient penalty)."""
        return self.config.critic_steps == 1 and not self.gan_loss.gradient_penalty

    @property
    def model_classes(self) -> int:
        """Classes the models read: the dataset's for the cGAN, 0 (unconditional) for the GAN."""
        return self.num_classes if self.conditional else 0

    @functools.cached_property
    def model_pair(self) -> tuple[nn.Module, nn.Module]:
        """(generator, discriminator): `dcgan_for` the dataset's image shape and the config's widths
        (a ConfigError for an image size no DCGAN fits). With a gradient penalty the paper's
        discriminator normalizes per image (LayerNorm), as the penalty needs."""
        return dcgan_for(
            self.image_shape,
            g_features=self.config.g_features,
            d_features=self.config.d_features,
            dropout=self.config.dropout,
            num_classes=self.model_classes,
            fast_grad=self.fast_grad,
            dtype=jnp.dtype(self.config.compute_dtype),
            per_example_critic=self.gan_loss.gradient_penalty,
        )

    @property
    def generator(self) -> nn.Module:
        return self.model_pair[0]

    @property
    def discriminator(self) -> nn.Module:
        return self.model_pair[1]

    @functools.cached_property
    def g_tx(self) -> optax.GradientTransformation:
        return optax.adam(self.config.learning_rate, b1=self.config.beta1)

    @functools.cached_property
    def d_tx(self) -> optax.GradientTransformation:
        return optax.adam(
            self.config.d_learning_rate or self.config.learning_rate, b1=self.config.beta1
        )

    @property
    def images_per_step(self) -> int:
        """Real images one step reads: a batch per discriminator update."""
        return self.config.critic_steps * self.config.batch_size

    @functools.cached_property
    def feed(self) -> ImageFeed:
        """`images_per_step` training images a step, in one order per epoch (the cGAN: with their
        classes)."""
        feed = ImageFeed(
            self.config.seed,
            self.image_shape,
            self.images_per_step,
            labels=self.conditional,
            num_classes=self.num_classes,
            run=self.run_names,
        )
        if self.config.critic_steps > 1:  # a step reads several batches
            feed = dataclasses.replace(
                feed,
                rows_name="critic_steps × batch_size",
                rows_options="--batch-size or --critic-steps",
            )
        return feed

    def check_ready(self) -> None:
        """A missing feature network (`eval_every_epoch`) fails now, not after the first epoch."""
        if self.config.eval_every_epoch:
            load_feature_network(self.feature_net_config())

    def feature_net_config(self) -> FeatureNetConfig:
        """The config of the feature network that scores this run's samples (its dataset, as
        shaped)."""
        c = self.config
        return feature_net_config(c.dataset, c.image_size, c.channels)

    def evaluate(self, state: TrainState, test: data_lib.Split | None) -> dict[str, list[float]]:
        """With `eval_every_epoch`: sample-quality metrics of `eval_samples` generated images
        (`gan_jax.evaluate.sample_quality`, against the feature network's test statistics)."""
        if not self.config.eval_every_epoch:
            return {}
        from gan_jax.evaluate import sample_quality

        return {k: [v] for k, v in sample_quality(self, state, self.config.eval_samples).items()}

    def init_models(self, data=None) -> dict[str, ModelState]:
        """Both models initialized from the seed (the generator's EMA at zero when kept)."""
        g_key, d_key = jax.random.split(self.key(Stream.INIT))
        labels = jnp.zeros((1,), jnp.int32) if self.conditional else None
        z = jnp.zeros((1, self.config.noise_dim), jnp.float32)
        g_vars = self.generator.init(g_key, z, train=False, labels=labels)
        images = jnp.zeros((1, *self.image_shape), jnp.float32)
        d_vars = self.discriminator.init(d_key, images, train=False, labels=labels)
        g = create_model_state(g_vars, self.g_tx, ema=bool(self.config.g_ema_decay))
        return {"generator": g, "discriminator": create_model_state(d_vars, self.d_tx)}

    def fake_digits(self, key: jax.Array, num: int) -> jax.Array | None:
        """The classes the cGAN's fakes are asked for, uniform int32 `[num]` in 0..num_classes-1;
        None for the GAN."""
        if not self.conditional:
            return None
        key = jax.random.fold_in(key, 1)
        return jax.random.randint(key, (num,), 0, self.num_classes, jnp.int32)

    def _discriminate(
        self, d_params, batch_stats, images: jax.Array, digits, key: jax.Array
    ) -> tuple[jax.Array, Any]:
        """D's logits `[B]` on `images` in training mode (dropout from `key`) and its BatchNorm
        statistics after this pass; `batch_stats` as given (empty) for a D without BatchNorm."""
        if not batch_stats:
            logits = self.discriminator.apply(
                {"params": d_params}, images, train=True, labels=digits, rngs={"dropout": key}
            )
            return cast(jax.Array, logits), batch_stats
        logits, updates = self.discriminator.apply(
            {"params": d_params, "batch_stats": batch_stats},
            images,
            train=True,
            labels=digits,
            rngs={"dropout": key},
            mutable=["batch_stats"],
        )
        return cast(jax.Array, logits), updates["batch_stats"]

    def _generator_loss(self, d: ModelState, fakes: jax.Array, digits, key: jax.Array) -> jax.Array:
        """G's loss on D(`fakes`) in training mode (a BatchNorm D: the fakes' own batch
        statistics; its running statistics are left as they are)."""
        logits, _ = self._discriminate(d.params, d.batch_stats, fakes, digits, key)
        return self.gan_loss.generator(logits)

    def _gradient_penalty(
        self, d_params, real: jax.Array, fakes: jax.Array, digits, key: jax.Array
    ) -> jax.Array:
        """`gradient_penalty` of D in training mode between `real` and `fakes`; the cGAN's critic
        reads the real images' `digits` at every interpolate."""
        eps_key, dropout_key = jax.random.split(key)

        def critic(x):
            return self.discriminator.apply(
                {"params": d_params}, x, train=True, labels=digits, rngs={"dropout": dropout_key}
            )

        return gradient_penalty(critic, real, fakes, eps_key)

    def _update_generator(self, g: ModelState, grads, batch_stats) -> ModelState:
        g = apply_gradients(g, grads, self.g_tx, batch_stats=batch_stats)
        return update_ema(g, self.config.g_ema_decay) if self.config.g_ema_decay else g

    def discriminator_update(
        self,
        models: dict[str, ModelState],
        real: jax.Array,
        fakes: jax.Array,
        key: jax.Array,
        real_digits=None,
        fake_digits=None,
    ) -> tuple[dict[str, ModelState], jax.Array]:
        """One D step on the config's loss (and, for WGAN-GP, `gp_weight` × the gradient penalty).
        `real`, `fakes`: float `[B, H, W, C]` in [-1, 1]; the cGAN also takes their digits, int32
        `[B]`.
        Returns the models with D updated, and D's loss (penalty included)."""
        d = models["discriminator"]
        if self.gan_loss.gradient_penalty:
            key, penalty_key = jax.random.split(key)

        def loss_fn(d_params):
            if d.batch_stats:  # BatchNorm: the real and the fake batch each normalized alone
                real_key, fake_key = jax.random.split(key)
                real_logits, stats = self._discriminate(
                    d_params, d.batch_stats, real, real_digits, real_key
                )
                fake_logits, stats = self._discriminate(
                    d_params, stats, fakes, fake_digits, fake_key
                )
            else:
                digits = jnp.concatenate([real_digits, fake_digits]) if self.conditional else None
                logits, stats = self._discriminate(
                    d_params, d.batch_stats, jnp.concatenate([real, fakes]), digits, key
                )
                real_logits, fake_logits = logits[: real.shape[0]], logits[real.shape[0] :]
            loss = self.gan_loss.discriminator(real_logits, fake_logits)
            if self.gan_loss.gradient_penalty:
                loss += self.config.gp_weight * self._gradient_penalty(
                    d_params, real, fakes, real_digits, penalty_key
                )
            return loss, stats

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
        d = apply_gradients(d, grads, self.d_tx, batch_stats=stats if d.batch_stats else None)
        return {**models, "discriminator": d}, loss

    def generator_update(
        self, models: dict[str, ModelState], z: jax.Array, key: jax.Array, digits=None
    ) -> tuple[dict[str, ModelState], jax.Array]:
        """One G step: the config's generator loss of D(G(z)), differentiated through D into G."""
        g, d = models["generator"], models["discriminator"]

        def loss_fn(g_params):
            fakes, stats = self._generate_train(g, z, digits, g_params)
            return self._generator_loss(d, fakes, digits, key), stats

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(g.params)
        return {**models, "generator": self._update_generator(g, grads, stats)}, loss

    def train_step(
        self, models: dict[str, ModelState], batch: dict[str, jax.Array], key: jax.Array
    ) -> tuple[dict[str, ModelState], Metrics]:
        """One step, D then G, on the feed's batch: `images` float `[critic_steps · B, H, W, C]` in
        [-1, 1] (the cGAN: and their classes `labels`, int32 `[critic_steps · B]`): the fused step
        when `fused`, else `critic_steps_then_generator`.
        Metrics: `d_loss` (the mean over the step's D updates) and `g_loss`.
        """
        real, digits = batch["images"], batch.get("labels")
        if self.fused:
            return self.fused_step(models, real, key, digits)
        return self.critic_steps_then_generator(models, real, key, digits)

    def fused_step(
        self,
        models: dict[str, ModelState],
        real: jax.Array,
        key: jax.Array,
        digits: jax.Array | None = None,
    ) -> tuple[dict[str, ModelState], Metrics]:
        """One D update then one G update on `real` `[B, H, W, C]` in [-1, 1] (the cGAN: `digits`
        `[B]`).

        Computes what `discriminator_update` followed by `generator_update` (same z) computes, with
        one generator forward instead of two: G's VJP from generating the fakes is reused. Not for
        a loss with a gradient penalty.
        """
        z_key, d_key, g_key = jax.random.split(key, 3)
        g = models["generator"]
        z, fake_digits = shard_batch(
            (self.noise(z_key, real.shape[0]), self.fake_digits(z_key, real.shape[0]))
        )
        fakes, g_vjp, stats = jax.vjp(
            lambda p: self._generate_train(g, z, fake_digits, p), g.params, has_aux=True
        )
        models, d_loss = self.discriminator_update(models, real, fakes, d_key, digits, fake_digits)
        d = models["discriminator"]
        g_loss, fake_grads = jax.value_and_grad(
            lambda f: self._generator_loss(d, f, fake_digits, g_key)
        )(fakes)
        (g_grads,) = g_vjp(fake_grads)
        return {**models, "generator": self._update_generator(g, g_grads, stats)}, {
            "d_loss": d_loss,
            "g_loss": g_loss,
        }

    def critic_steps_then_generator(
        self,
        models: dict[str, ModelState],
        real: jax.Array,
        key: jax.Array,
        digits: jax.Array | None = None,
    ) -> tuple[dict[str, ModelState], Metrics]:
        """`critic_steps` D updates, the i-th on real batch i (of B) with fresh fakes, then one G
        update on fresh noise; `real` `[critic_steps · B, H, W, C]` in [-1, 1], `digits` int32
        `[critic_steps · B]`.

        Keys: `critic_key, g_key = split(key)`; D update i uses
        `split(critic_key, critic_steps)[i]`, split into (noise, D) keys; the G update splits
        `g_key` the same way.
        """
        n = self.config.critic_steps
        real = real.reshape(n, -1, *real.shape[1:])
        step_digits: list[None] | jax.Array = (
            [None] * n if digits is None else digits.reshape(n, -1)
        )
        critic_key, g_key = jax.random.split(key)
        d_losses = []
        # Unrolled, not a lax.scan: on a 2-core CPU (n = 5, batch 64) the scan's step took ~25x as
        # long, as XLA:CPU runs convolution gradients inside a loop slowly, and it did not compile
        # faster.
        for real_i, digits_i, key_i in zip(
            real, step_digits, jax.random.split(critic_key, n), strict=False
        ):
            models, d_loss = self._critic_update(models, real_i, key_i, digits_i)
            d_losses.append(d_loss)
        models, g_loss = self._generator_update_on_fresh_noise(models, real.shape[1], g_key)
        return models, {"d_loss": jnp.mean(jnp.stack(d_losses)), "g_loss": g_loss}

    def _critic_update(
        self, models: dict[str, ModelState], real: jax.Array, key: jax.Array, digits=None
    ) -> tuple[dict[str, ModelState], jax.Array]:
        """`discriminator_update` on float `real` `[B, H, W, C]` and B fakes of a fresh G(z) in
        training mode."""
        z_key, d_key = jax.random.split(key)
        real, digits = shard_batch((real, digits))
        z, fake_digits = shard_batch(
            (self.noise(z_key, real.shape[0]), self.fake_digits(z_key, real.shape[0]))
        )
        fakes, _ = self._generate_train(models["generator"], z, fake_digits)
        return self.discriminator_update(models, real, fakes, d_key, digits, fake_digits)

    def _generator_update_on_fresh_noise(
        self, models: dict[str, ModelState], num: int, key: jax.Array
    ) -> tuple[dict[str, ModelState], jax.Array]:
        """`generator_update` on `num` fresh noise vectors (and, for the cGAN, uniform digits)."""
        z_key, d_key = jax.random.split(key)
        z, digits = shard_batch((self.noise(z_key, num), self.fake_digits(z_key, num)))
        return self.generator_update(models, z, d_key, digits)

    def generator_params(self, state: TrainState):
        """The generator parameters sampling uses: the bias-corrected EMA when kept, else the raw
        ones."""
        return ema_params(state.models["generator"], self.config.g_ema_decay, state.step)

    def generator_variables(self, state: TrainState, member: int = 0) -> dict:
        """`generator_params` and the generator's BatchNorm statistics (one model: no `member`)."""
        g = state.models["generator"]
        return {"params": self.generator_params(state), "batch_stats": g.batch_stats}

    def report(self, state: TrainState, test=None, num_samples: int = 10_000) -> dict:
        """`gan_jax.evaluate.sample_quality` of `num_samples` generated images (the feature network
        holds the test images' statistics, so `test` is not read)."""
        from gan_jax.evaluate import sample_quality

        return {"num_samples": num_samples, **sample_quality(self, state, num_samples)}


@dataclasses.dataclass(frozen=True)
class CGANTask(GANTask):
    """The conditional GAN: the DCGAN of the image size (`dcgan_for`) with the class as a second
    input."""

    config: CGANConfig
    config_type: ClassVar[type[CGANConfig]] = CGANConfig

    conditional: ClassVar[bool] = True

    def check_ready(self) -> None:
        """DataError for a dataset with one class (a conditional run needs two or more)."""
        if self.num_classes == 1:
            raise DataError(
                f"{self.config.dataset} has one class; a conditional run needs two or more: add "
                "class subfolders (or labels), or train an unconditional gan"
            )
        super().check_ready()
