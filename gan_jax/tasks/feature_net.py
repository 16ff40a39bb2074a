"""The feature network as a task: a small CNN trained on every training image and label of a
dataset.

Trained by the same host loop as every other task (`gan_jax.api.train_feature_network`: progress,
and an interrupted training resumes); `gan_jax.features` caches the result and uses its
penultimate layer.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import data as data_lib
from gan_jax import features as features_lib
from gan_jax.config import FeatureNetConfig
from gan_jax.feed import ImageFeed, random_shift
from gan_jax.losses import cross_entropy
from gan_jax.models import FeatureNet
from gan_jax.steps import (
    Metrics,
    ModelState,
    TrainState,
    apply_gradients,
    create_model_state,
)
from gan_jax.tasks.base import SeededTask, Stream


@dataclasses.dataclass(frozen=True)
class FeatureTask(SeededTask):
    """Cross-entropy training of `FeatureNet` on every training image and its label."""

    config: FeatureNetConfig

    config_type: ClassVar[type[FeatureNetConfig]] = FeatureNetConfig
    loss_keys: ClassVar[tuple[str, ...]] = ("loss",)
    adversarial_losses: ClassVar[tuple[str, str] | None] = None
    members: ClassVar[tuple[dict[str, int], ...]] = ({},)
    needs_test_split: ClassVar[bool] = True

    @functools.cached_property
    def network(self) -> FeatureNet:
        return features_lib.network_module(self.config)

    @functools.cached_property
    def tx(self) -> optax.GradientTransformation:
        schedule = optax.exponential_decay(
            self.config.learning_rate, self.config.halving_steps, 0.5
        )
        return optax.adam(schedule)

    @functools.cached_property
    def feed(self) -> ImageFeed:
        """Every training image and its class, `batch_size` a step, in one order per epoch."""
        return ImageFeed(
            self.config.seed,
            self.image_shape,
            self.config.batch_size,
            labels=True,
            num_classes=self.num_classes,
            run=self.run_names,
        )

    def init_models(self, data=None) -> dict[str, ModelState]:
        images = jnp.zeros((1, *self.image_shape), jnp.float32)
        variables = self.network.init(self.key(Stream.INIT), images)
        return {"classifier": create_model_state(variables, self.tx)}

    def train_step(
        self, models: dict[str, ModelState], batch: dict[str, jax.Array], key: jax.Array
    ) -> tuple[dict[str, ModelState], Metrics]:
        """One Adam step on the feed's batch (`images` float `[B, H, W, C]` in [-1, 1], `labels`
        int32 `[B]`), each image randomly shifted."""
        images = random_shift(batch["images"], self.config.max_shift, key)
        c = models["classifier"]

        def loss_fn(params):
            logits, _ = self.network.apply({"params": params}, images)
            return cross_entropy(logits, batch["labels"])

        loss, grads = jax.value_and_grad(loss_fn)(c.params)
        return {"classifier": apply_gradients(c, grads, self.tx)}, {"loss": loss}

    def evaluate(self, state: TrainState, test: data_lib.Split) -> dict[str, list[float]]:
        """Test accuracy (argmax of the logits)."""
        logits, _ = self.logits_and_features(state.models["classifier"].params, test.images)
        return {"test_accuracy": [float(np.mean(np.argmax(logits, -1) == np.asarray(test.labels)))]}

    def report(
        self, state: TrainState, test: data_lib.Split | None = None, num_samples: int = 0
    ) -> dict:
        """`{"test_accuracy": ...}` on `test` (default: the test split of the config's dataset and
        source)."""
        test = self.test_split(test)
        return {
            "test_accuracy": self.evaluate(state, test)["test_accuracy"][0],
            "num_test": len(test.images),
        }

    def logits_and_features(self, params, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(logits [N, num_classes], features [N, hidden])` of uint8 images `[N, H, W, C]`, or
        float images in [-1, 1]."""
        return features_lib.logits_and_features(self.network, params, images)
