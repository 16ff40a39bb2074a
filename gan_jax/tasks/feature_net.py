"""The feature network as a task: a small CNN trained on every training image and label of a
dataset.

Trained by the same host loop as every other task (`gan_jax.api.train_feature_network`: progress,
and an interrupted training resumes); `gan_jax.features` caches the result and uses its
penultimate layer.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import data as data_lib
from gan_jax import features as features_lib
from gan_jax.config import FeatureNetConfig
from gan_jax.losses import cross_entropy
from gan_jax.models import FeatureNet
from gan_jax.parallel import shard_batch
from gan_jax.steps import (
    Metrics,
    ModelState,
    TrainState,
    apply_gradients,
    batch_indices,
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

    @property
    def network(self) -> FeatureNet:
        return features_lib.network_module(self.config)

    @property
    def tx(self) -> optax.GradientTransformation:
        schedule = optax.exponential_decay(
            self.config.learning_rate, self.config.halving_steps, 0.5
        )
        return optax.adam(schedule)

    @property
    def rows_per_step(self) -> int:
        """Rows of each `host_data` array one step reads (`gan_jax.stream`)."""
        return self.config.batch_size

    def host_data(self, train: data_lib.Split) -> dict[str, np.ndarray]:
        """Images uint8 `[N, H, W, C]` and classes int32 `[N]` in host memory: what
        `device_data` puts on the device, or what a streamed run gathers from."""
        labels = self.host_labels(train)
        return {"images": data_lib.check_images(train.images, self.image_shape), "labels": labels}

    def device_data(self, train: data_lib.Split) -> dict[str, jax.Array]:
        """`host_data` on the device."""
        return jax.device_put(self.host_data(train))

    def init_models(self, data=None) -> dict[str, ModelState]:
        images = jnp.zeros((1, *self.image_shape), jnp.float32)
        variables = self.network.init(self.key(Stream.INIT), images)
        return {"classifier": create_model_state(variables, self.tx)}

    def step(
        self,
        models: dict[str, ModelState],
        data: dict[str, jax.Array],
        perm: jax.Array,
        index: jax.Array,
        key: jax.Array,
    ) -> tuple[dict[str, ModelState], Metrics]:
        """One Adam step on batch `index` of the epoch ordered by `perm`, each image randomly
        shifted."""
        idx = batch_indices(perm, index, self.config.batch_size)
        images, labels = (
            random_shift(data["images"][idx], self.config.max_shift, key),
            data["labels"][idx],
        )
        images, labels = shard_batch((data_lib.to_unit_range(images), labels))
        c = models["classifier"]

        def loss_fn(params):
            logits, _ = self.network.apply({"params": params}, images)
            return cross_entropy(logits, labels)

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


def random_shift(images: jax.Array, max_shift: int, key: jax.Array) -> jax.Array:
    """Each image of `[B, H, W, C]` shifted by its own uniform (dy, dx) in [-max_shift, max_shift],
    the uncovered border filled with zeros (the background)."""
    if max_shift == 0:
        return images
    size = images.shape[1:3]
    padded = jnp.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)))
    offsets = jax.random.randint(key, (images.shape[0], 2), 0, 2 * max_shift + 1)
    crop = lambda image, offset: jax.lax.dynamic_slice(
        image, (offset[0], offset[1], 0), (*size, image.shape[-1])
    )
    return jax.vmap(crop)(padded, offsets)
