"""Training configurations as frozen, validated data.

A config holds everything that decides a run's result. It is stored beside every checkpoint,
so a resumed run can check that it continues the same experiment.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Protocol

from gan_jax.data import DATASETS, check_name, require_label_count
from gan_jax.data.shaping import check_shape_request
from gan_jax.errors import ConfigError

DATA_SOURCES = ("auto", "tfds", "offline")
COMPUTE_DTYPES = ("float32", "bfloat16")


def require_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}; pass a value >= 1")


class TrainingConfig(Protocol):
    """What the training loop reads of a task's config; every `RunConfig` satisfies it."""

    @property
    def task(self) -> str: ...
    @property
    def dataset(self) -> str: ...
    @property
    def image_size(self) -> int | None: ...
    @property
    def channels(self) -> int | None: ...
    @property
    def data_source(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def epochs(self) -> int: ...
    @property
    def steps(self) -> int | None: ...
    @property
    def steps_per_call(self) -> int | None: ...
    @property
    def checkpoint_every(self) -> int | None: ...

    def to_dict(self) -> dict[str, Any]: ...
    def conflicts_with(self, stored: dict[str, Any]) -> list[str]: ...


def described(default: Any, help: str) -> Any:
    """A config field with its `default` and its `help` (what the field means: the CLI option's
    help, `field_docs`)."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The fields every task's config shares, declared once, with the JSON round trip and resume
    checks.

    A task's config subclasses it, adding its own fields and redeclaring a shared one only to
    change its default.

    Each field's meaning is its `help` metadata (`described`), which the CLI's options show.
    """

    task: ClassVar[str]
    epochs: int = described(
        1,
        "passes over the training split.",
    )
    steps: int | None = described(
        None,
        "stop after this many steps in total, for quick runs; not set (None): all epochs.",
    )
    batch_size: int = described(
        128,
        "training images per step.",
    )
    seed: int = described(
        0,
        "decides initialization, data order and noise.",
    )
    learning_rate: float = described(
        1e-3,
        "Adam's step size.",
    )
    steps_per_call: int | None = described(
        None,
        "steps per compiled call; not set (None): per platform "
        "(`gan_jax.steps.default_steps_per_call`): an epoch on GPU/TPU; on CPU 1 for the "
        "convolutional models (gan, cgan, features, `--model conv`) and min(100, steps per epoch) "
        "for the `--model mlp` SGAN and supervised classifier (100 at batch 100). It changes "
        "speed only, never results.",
    )
    data_source: str = described(
        "auto",
        "where the images come from: 'tfds' (a prepared TFDS dataset), 'offline' (the verified "
        "cache built from a package registry) or 'auto' (TFDS if prepared, else offline).",
    )
    dataset: str = described(
        "mnist",
        "what to train on: mnist, fashion_mnist, cifar10, or your own images as folder:PATH "
        "(PNG/JPEG; one subfolder per class gives labels; train/ and test/ subfolders give a test "
        "split), npz:PATH (arrays x [N, H, W, C] uint8, optional y, x_test, y_test) or "
        "tfds:NAME[:SPLIT] (a TFDS image dataset prepared on this machine); the models are sized "
        "from its images.",
    )
    image_size: int | None = described(
        None,
        "crop each image to a centred square and resize it to this many pixels a side (e.g. 28, "
        "32 or 64), once, when the dataset is first read; not set (None): as stored.",
    )
    channels: int | None = described(
        None,
        "1 (grey) or 3 (colour), converting the images; not set (None): as stored.",
    )
    test_fraction: float | None = described(
        None,
        "share of a labelled dataset of your own held out as its test split when it has none: "
        "stratified by class and always the same images (0 < F < 1); not set (None): no split is "
        "made (the default of generators, which need no test split; classifiers: 0.1).",
    )
    val_fraction: float | None = described(
        None,
        "share of a labelled dataset's training images (what the test split leaves) held out, "
        "like test_fraction's, as a validation split when it has none; a classifier scores it "
        "every epoch (`val_accuracy`) and keeps its best state for `--checkpoint best`. Not set "
        "(None): none is made (MedMNIST's own val split is scored all the same).",
    )
    checkpoint_every: int | None = described(
        None,
        "also checkpoint every this many steps; not set (None): at epoch ends only.",
    )
    allow_rare_classes: bool = described(
        False,
        "train even when a class has no training images or fewer than a twentieth of the median "
        "class's (refused by default: usually a stray or missing label).",
    )

    # Fields whose value is one of a few names (checked here, offered as `choices` by the CLI).
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"data_source": DATA_SOURCES}
    # Named sets of defaults (`recipe`); the first is the default recipe. `RECIPE_FIELD` is the
    # field a recipe's name is stored in (a classifier's `model`), or None when the name is not
    # stored.
    RECIPES: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}
    RECIPE_FIELD: ClassVar[str | None] = None
    # Fields a command line must give (the API keeps their defaults).
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    RESUMABLE_FIELDS: ClassVar[tuple[str, ...]] = (
        "epochs",
        "steps",
        "steps_per_call",
        "data_source",
        "checkpoint_every",
        "allow_rare_classes",
    )

    def _check_common(self) -> None:
        for name in ("epochs", "batch_size"):
            require_positive(name, getattr(self, name))
        for name in ("steps", "steps_per_call", "checkpoint_every"):
            if getattr(self, name) is not None:
                require_positive(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(
                f"seed must be a non-negative integer, got {self.seed!r}; pass e.g. 0"
            )
        if not self.learning_rate > 0:
            raise ConfigError(
                f"learning_rate must be > 0, got {self.learning_rate!r}; pass e.g. 1e-4"
            )
        check_name(self.dataset)
        check_shape_request(self.image_size, self.channels)
        for name in ("test_fraction", "val_fraction"):
            fraction = getattr(self, name)
            if fraction is not None and (isinstance(fraction, bool) or not 0 < fraction < 1):
                raise ConfigError(
                    f"{name} must be between 0 and 1, got {fraction!r}; pass e.g. 0.1"
                )
        for name, choices in self.CHOICES.items():
            if getattr(self, name) not in choices:
                raise ConfigError(
                    f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}; "
                    "pass one of those"
                )

    @classmethod
    def recipe(cls, name: str | None = None, **overrides: Any):
        """The config of recipe `name` (a key of `RECIPES`; None: the first), with `overrides`.

        None-valued overrides are ignored (they mean "the recipe's value"); a recipe's values for
        fields this config does not have are skipped (a baseline has no generator).
        """
        name = next(iter(cls.RECIPES)) if name is None else name
        if name not in cls.RECIPES:
            raise ConfigError(
                f"{cls.RECIPE_FIELD or 'recipe'} must be one of {', '.join(cls.RECIPES)}, got "
                f"{name!r}"
            )
        chosen = overrides.get(cls.RECIPE_FIELD) if cls.RECIPE_FIELD else None
        if chosen is not None and chosen != name:
            raise ConfigError(
                f"{cls.RECIPE_FIELD} {chosen!r} differs from recipe {name!r}; pass "
                f"{cls.__name__}.recipe({chosen!r}, ...)"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in cls.RECIPES[name].items() if k in names}
        return cls(**{**values, **{k: v for k, v in overrides.items() if v is not None}})

    def to_dict(self) -> dict[str, Any]:
        """JSON form (tuples as lists), with the task name."""
        return {"task": self.task, **{k: _jsonable(v) for k, v in dataclasses.asdict(self).items()}}

    @classmethod
    def from_dict(cls, stored: dict[str, Any]):
        """Inverse of `to_dict`; unknown keys are a `ConfigError`."""
        stored = dict(stored)
        task = stored.pop("task", cls.task)
        if task != cls.task:
            raise ConfigError(f"config is for task {task!r}, not {cls.task!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(stored) - names)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown} for task {cls.task!r}")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()
        }
        return cls(**values)

    def conflicts_with(self, stored: dict[str, Any]) -> list[str]:
        """Names of result-deciding fields whose value differs from a stored config's."""
        mine = self.to_dict()
        # A field the stored config lacks reads as its default.
        stored = {
            **{
                f.name: _jsonable(f.default)
                for f in dataclasses.fields(self)
                if f.default is not dataclasses.MISSING
            },
            **stored,
        }
        keys = sorted((set(mine) | set(stored)) - set(self.RESUMABLE_FIELDS))
        return [k for k in keys if mine.get(k) != stored.get(k)]


# The rows of the GAN loss table (`gan_jax.losses.GAN_LOSSES`), the default first. The tables live
# with the maths (JAX); their names live here, so that configs and the command line need no JAX
# (tests/test_losses.py checks that the table has exactly these).
GAN_LOSS_NAMES = ("non_saturating", "hinge", "wgan_gp", "least_squares")


# The better-GAN recipe is what benchmarks/results/gan_quality_cpu.md supports: DCGAN's Adam (2e-4,
# beta1 0.5) on the tutorial's architecture and batch. TTUR and a generator EMA (0.999) scored worse
# within the runs measured, so they stay options (`d_learning_rate`, `g_ema_decay`).
GAN_RECIPES: dict[str, dict[str, Any]] = {
    "tutorial": {},
    "improved": dict(learning_rate=2e-4, beta1=0.5),
}


@dataclasses.dataclass(frozen=True)
class GANConfig(RunConfig):
    """The DCGAN of the TensorFlow MNIST tutorial (defaults are the tutorial's but for 20 epochs,
    the seed tutorial's `num_epoch`, where TensorFlow's trains 50).

    `learning_rate` is both models' Adam step size.
    """

    task: ClassVar[str] = "gan"
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        **RunConfig.CHOICES,
        "loss": GAN_LOSS_NAMES,
        "compute_dtype": COMPUTE_DTYPES,
    }
    RECIPES: ClassVar[dict[str, dict[str, Any]]] = GAN_RECIPES
    RESUMABLE_FIELDS: ClassVar[tuple[str, ...]] = RunConfig.RESUMABLE_FIELDS + (
        "eval_every_epoch",
        "eval_samples",
    )

    epochs: int = 20
    batch_size: int = described(
        256,
        "real images per discriminator update (and generated images per generator update).",
    )
    learning_rate: float = 1e-4
    noise_dim: int = described(
        100,
        "length of the generator's N(0, 1) input vector.",
    )
    g_features: tuple[int, ...] = described(
        (256, 128, 64),
        "generator widths: a dense layer to (H/4)·(W/4)·g[0] (7·7·g[0] for MNIST), then "
        "transposed convs of g[1] and g[2] channels, then one to the image's channels. At 64 px "
        "(the DCGAN paper's generator) only g[-1] is read: widths 8·g[-1], 4·g[-1], 2·g[-1], "
        "g[-1] (the paper's ngf = 64 by default).",
    )
    d_features: tuple[int, ...] = described(
        (64, 128),
        "discriminator conv widths, each a stride-2 5x5 conv. At 64 px (the DCGAN paper's "
        "discriminator) only d[0] is read: four stride-2 4x4 convs of d[0], 2·d[0], 4·d[0], "
        "8·d[0] (the paper's ndf = 64 by default).",
    )
    dropout: float = described(
        0.3,
        "discriminator dropout rate, in [0, 1) (the 64 px discriminator has none).",
    )
    num_samples: int = described(
        16,
        "fixed noise vectors drawn for the per-epoch sample grid.",
    )
    beta1: float = described(
        0.9,
        "Adam's first-moment decay for both models (the tutorial's Keras default 0.9; DCGAN 0.5).",
    )
    d_learning_rate: float | None = described(
        None,
        "the discriminator's Adam step size; not set (None): `learning_rate` (two rates make the "
        "two-time-scale update rule, TTUR).",
    )
    g_ema_decay: float = described(
        0.0,
        "sample and evaluate an exponential moving average of the generator's parameters with "
        "this decay (bias-corrected); 0 uses the raw parameters.",
    )
    eval_every_epoch: bool = described(
        False,
        "add the Fréchet distance, Inception Score and confident share of `eval_samples` "
        "generated images to every epoch's metrics row (`gan_jax.evaluate`).",
    )
    eval_samples: int = described(
        10_000,
        "generated images per per-epoch evaluation.",
    )
    compute_dtype: str = described(
        "float32",
        "'float32' or 'bfloat16': the dtype of activations and matrix products. Parameters, "
        "optimizer states, BatchNorm statistics and losses stay float32 (mixed precision).",
    )
    loss: str = described(
        "non_saturating",
        "the adversarial objective (`gan_jax.losses.GAN_LOSSES`): 'non_saturating' (BCE, the "
        "tutorial's), 'hinge', 'wgan_gp' (Wasserstein critic with a gradient penalty) or "
        "'least_squares' (LSGAN).",
    )
    critic_steps: int = described(
        1,
        "discriminator updates per generator update; each takes its own batch of real images, so "
        "a step reads `critic_steps · batch_size` images and an epoch has `N // (critic_steps · "
        "batch_size)` steps.",
    )
    gp_weight: float = described(
        10.0,
        "weight of the gradient penalty in the critic's loss, >= 0 (the wgan_gp loss only).",
    )

    def __post_init__(self):
        self._check_common()
        for name in ("noise_dim", "num_samples", "eval_samples", "critic_steps"):
            require_positive(name, getattr(self, name))
        if not self.gp_weight >= 0:
            raise ConfigError(
                f"gp_weight must be >= 0, got {self.gp_weight!r}; pass e.g. 10 (the WGAN-GP "
                "paper's)"
            )
        if self.eval_samples < 2:
            raise ConfigError(
                "eval_samples must be >= 2 (a covariance needs two samples), got "
                f"{self.eval_samples}; pass e.g. 10000"
            )
        if not 0 <= self.beta1 < 1:
            raise ConfigError(f"beta1 must be in [0, 1), got {self.beta1!r}; pass e.g. 0.5 or 0.9")
        if self.d_learning_rate is not None and not self.d_learning_rate > 0:
            raise ConfigError(
                f"d_learning_rate must be > 0, got {self.d_learning_rate!r}; "
                "pass e.g. 4e-4, or leave it out"
            )
        if not 0 <= self.g_ema_decay < 1:
            raise ConfigError(
                f"g_ema_decay must be in [0, 1), got {self.g_ema_decay!r}; "
                "pass e.g. 0.999, or 0 for none"
            )
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}; pass e.g. 0.3")
        if len(self.g_features) != 3:
            raise ConfigError(
                f"g_features needs 3 widths (dense, conv, conv), got {self.g_features!r}; "
                "pass e.g. 256,128,64"
            )
        if len(self.d_features) != 2:
            raise ConfigError(
                f"d_features needs 2 widths, got {self.d_features!r}; pass e.g. 64,128"
            )
        for name in ("g_features", "d_features"):
            for width in getattr(self, name):
                require_positive(f"each of {name}", width)


@dataclasses.dataclass(frozen=True)
class CGANConfig(GANConfig):
    """The conditional DCGAN: ask it for a digit (`gan-jax sample --digit 7`).

    The generator also takes the digit (one-hot beside z), and the discriminator scores (image,
    digit) pairs with a projection head. Fields as in `GANConfig`; `num_samples` defaults to 100
    (a 10 × 10 grid, one column per digit).
    """

    task: ClassVar[str] = "cgan"

    num_samples: int = 100


@dataclasses.dataclass(frozen=True)
class FeatureNetConfig(RunConfig):
    """The classifier whose penultimate features define the Fréchet distance on its dataset.
    Evaluations use the packaged network (MNIST, Fashion-MNIST) or the one `gan-jax features
    --retrain` trained and cached; a run of this config in a workdir is for study, and they never
    read it.

    `RunConfig`'s fields are its Adam training on the full training split.
    """

    task: ClassVar[str] = "features"

    epochs: int = 5
    test_fraction: float | None = 0.1
    halving_steps: int = described(
        1000,
        "the learning rate halves every this many steps.",
    )
    max_shift: int = described(
        2,
        "training images are shifted by up to this many pixels in each direction.",
    )
    widths: tuple[int, ...] = described(
        (32, 64),
        "conv widths, each a 3×3 conv + ReLU + 2×2 max-pool.",
    )
    hidden: int = described(
        128,
        "feature size (the penultimate, ReLU layer).",
    )

    def __post_init__(self):
        self._check_common()
        require_positive("hidden", self.hidden)
        require_positive("halving_steps", self.halving_steps)
        if (
            isinstance(self.max_shift, bool)
            or not isinstance(self.max_shift, int)
            or not 0 <= self.max_shift <= 8
        ):
            raise ConfigError(
                f"max_shift must be an integer in 0..8, got {self.max_shift!r}; pass e.g. 2"
            )
        if not self.widths:
            raise ConfigError("widths needs at least one conv width; pass e.g. 32,64")
        for width in self.widths:
            require_positive("each of widths", width)


# The rows of the SGAN generator loss table (`gan_jax.losses.SGAN_GENERATOR_LOSSES`), the default
# first (tests/test_losses.py checks that the table has exactly these).
G_LOSSES = ("feature_matching_l1", "feature_matching", "non_saturating")

# Per-model recipes: `mlp` is Improved GAN's (Salimans et al. 2016, the public script
# train_mnist_feature_matching.py) made stable; `conv` the seed's SGAN of "GANs in Action" ch. 7
# (book: 8,000 iterations of batch 32; 5 epochs here are 9,370 steps). The mlp recipe's choices,
# each with its source (benchmarks/results/sgan_mlp_cpu.md has the runs behind them):
MLP_RECIPE: dict[str, Any] = dict(
    epochs=300,
    batch_size=100,
    learning_rate=3e-3,
    beta1=0.5,  # the script: constant 3e-3, beta1 0.5
    # The script's Adam (Lasagne-style) divides by sqrt(v_hat + 1e-8): epsilon inside the root.
    # With optax's default (1e-8 outside) the discriminator won and the run collapsed on every seed
    # tried.
    adam_eps=0.0,
    adam_eps_root=1e-8,
    # The script evaluates an average of D's parameters, a += 1e-4 (p - a) from zero (decay 0.9999);
    # here it is bias-corrected, which equals the script's at 300 epochs and is usable before.
    ema_decay=0.9999,
    # Departures from the script, both from Bad GAN's MNIST code (Dai et al. 2017, ssl_bad_gan):
    # feature matching on mean |.| rather than the square (the squared form collapsed on one of two
    # seeds, the L1 form on none), on the features the output layer sees (after the last noise).
    g_loss="feature_matching_l1",
    fm_after_noise=True,
)
CLASSIFIER_RECIPES: dict[str, dict[str, Any]] = {
    "mlp": dict(model="mlp", **MLP_RECIPE),
    "conv": dict(
        model="conv",
        epochs=5,
        batch_size=32,
        learning_rate=1e-3,
        beta1=0.9,
        ema_decay=0.0,
        adam_eps=1e-8,
        adam_eps_root=0.0,
        g_loss="non_saturating",
        fm_after_noise=False,
    ),
}
# The SGAN/supervised model families (`gan_jax.tasks.sgan.FAMILIES`).
MODELS = tuple(CLASSIFIER_RECIPES)


@dataclasses.dataclass(frozen=True)
class SupervisedConfig(RunConfig):
    """The SGAN's classifier trained on its few labeled images alone: the supervised baseline.

    Defaults are the `mlp` recipe; `SupervisedConfig.recipe("conv", ...)` gives the conv one.

    An epoch is `len(train split) // batch_size` steps, the labeled set tiled to fill it and
    reshuffled per copy; `seed` is combined with each data seed.
    """

    task: ClassVar[str] = "supervised"
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        **RunConfig.CHOICES,
        "model": MODELS,
        "compute_dtype": COMPUTE_DTYPES,
    }
    RECIPES: ClassVar[dict[str, dict[str, Any]]] = CLASSIFIER_RECIPES
    RECIPE_FIELD: ClassVar[str | None] = "model"
    REQUIRED: ClassVar[tuple[str, ...]] = ("labels",)

    labels: int = described(
        100,
        "labeled training images, a positive multiple of the dataset's classes (as many of each "
        "class; 10 classes for MNIST).",
    )
    data_seeds: tuple[int, ...] = described(
        (0,),
        "data seeds (each picks a class-balanced labeled subset and the run's random streams); "
        "several seeds train together as independent members of one vmapped program.",
    )
    model: str = described(
        "mlp",
        "'mlp' (weight-normalized MLP with Gaussian noise) or 'conv' (the seed's CNN).",
    )
    test_fraction: float | None = 0.1
    epochs: int = 300
    batch_size: int = described(
        100,
        "labeled images per step (and, for the SGAN, as many unlabeled and generated ones).",
    )
    learning_rate: float = 3e-3
    beta1: float = described(
        0.5,
        "Adam's first-moment decay (both models).",
    )
    ema_decay: float = described(
        0.9999,
        "evaluation uses an exponential moving average of the classifier's parameters with this "
        "decay (bias-corrected); 0 evaluates the raw parameters.",
    )
    compute_dtype: str = described(
        "float32",
        "'float32' or 'bfloat16' (mlp only): the matrix products' input dtype; they accumulate in "
        "float32, and parameters, optimizer states and losses stay float32.",
    )
    adam_eps: float = described(
        0.0,
        "Adam's epsilon outside the square root of the second moment (optax's `eps`): the update "
        "is m̂ / (sqrt(v̂ + eps_root) + eps).",
    )
    adam_eps_root: float = described(
        1e-8,
        "Adam's epsilon inside the square root (optax's `eps_root`), as Improved GAN's script "
        "(Lasagne's Adam) has it.",
    )
    augment_shift: int = described(
        0,
        "shift each labelled training image by up to this many pixels in each direction (uniform "
        "per image and step, the border black; `gan_jax.feed`), a label-preserving augmentation "
        "(no flips: digits); 0: none. For the SGAN it is also the weak view of the pseudo-labels.",
    )

    def __post_init__(self):
        self._check_common()
        if isinstance(self.augment_shift, bool) or not (
            isinstance(self.augment_shift, int) and self.augment_shift >= 0
        ):
            raise ConfigError(
                f"augment_shift must be a non-negative integer, got {self.augment_shift!r}; pass "
                "e.g. 2, or 0 for none"
            )
        # A user dataset's classes are known once it is read (the task checks then).
        if self.dataset in DATASETS:
            require_label_count(self.labels, DATASETS[self.dataset].num_classes)
        seeds = self.data_seeds
        if (
            not isinstance(seeds, tuple)
            or not seeds
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)
        ):
            raise ConfigError(
                f"data_seeds must be one or more non-negative integers, got {seeds!r}; pass e.g. "
                "0,1,2"
            )
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"data_seeds has duplicates: {list(seeds)}; pass each seed once")
        if not 0 <= self.beta1 < 1:
            raise ConfigError(f"beta1 must be in [0, 1), got {self.beta1!r}; pass e.g. 0.5 or 0.9")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(
                f"ema_decay must be in [0, 1), got {self.ema_decay!r}; pass e.g. 0.9999, or 0 for "
                "none"
            )
        if not (
            self.adam_eps >= 0
            and self.adam_eps_root >= 0
            and self.adam_eps + self.adam_eps_root > 0
        ):
            raise ConfigError(
                f"adam_eps and adam_eps_root must be >= 0 and not both 0, got {self.adam_eps!r} "
                f"and {self.adam_eps_root!r}; pass e.g. --adam-eps 0 --adam-eps-root 1e-8"
            )
        if self.compute_dtype != "float32" and self.model != "mlp":
            raise ConfigError(
                f"compute_dtype {self.compute_dtype} is available for the mlp model only; "
                "drop --compute-dtype or pass --model mlp"
            )


@dataclasses.dataclass(frozen=True)
class SGANConfig(SupervisedConfig):
    """The semi-supervised GAN: a classifier from few labels, every training image unlabeled, and
    fakes.

    The `SupervisedConfig` classifier (K class logits, K the dataset's classes) also learns D(x) =
    sigmoid(logsumexp(logits)): real for the unlabeled images, fake for a generator's.
    """

    task: ClassVar[str] = "sgan"
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {**SupervisedConfig.CHOICES, "g_loss": G_LOSSES}

    g_loss: str = described(
        "feature_matching_l1",
        "'feature_matching_l1' (mean |E f(G(z)) − E f(x)| over the classifier's features, Bad "
        "GAN's form), 'feature_matching' (the mean square, Improved GAN's) or 'non_saturating' "
        "(fake → real through D(x)).",
    )
    noise_dim: int = described(
        100,
        "generator input size (U(0, 1) for `mlp`, N(0, 1) for `conv`).",
    )
    unlabeled_weight: float = described(
        1.0,
        "weight of the real/fake loss beside the labeled cross-entropy.",
    )
    num_samples: int = described(
        16,
        "fixed noise vectors for the per-epoch sample grid (first data seed's generator).",
    )
    fm_after_noise: bool = described(
        True,
        "mlp only: feature matching compares the last hidden layer after its Gaussian noise (what "
        "the output layer sees) instead of before it.",
    )
    entropy_weight: float = described(
        0.0,
        "weight of the classifier's conditional entropy on the unlabeled batch, added to its loss "
        "(Bad GAN's term; 0: none, the recipes').",
    )
    balance_weight: float = described(
        0.0,
        "weight of the class-balance loss on the unlabeled batch (KL from uniform to the batch's "
        "mean class distribution, CatGAN's term), added to the classifier's loss; it keeps one "
        "class from taking the images of others. Alone it is met by a near-uniform prediction for "
        "every image: pair it with entropy_weight, as CatGAN does (0: none, the recipes').",
    )
    unlabeled: str | None = described(
        None,
        "more unlabeled images (a dataset as for `dataset`, e.g. folder:PATH of a flat folder, "
        "shaped the same way): they join the dataset's training images as the real images the "
        "discriminator sees; labels are still picked from the dataset alone.",
    )
    pseudo_label_weight: float = described(
        0.0,
        "weight of FixMatch's pseudo-label term on the unlabeled batch, added to the classifier's "
        "loss: where the classifier's prediction on a weakly shifted image (up to augment_shift "
        "pixels) reaches pseudo_label_threshold, the cross-entropy of its prediction on a "
        "strongly shifted one (up to strong_shift pixels) against that class (0: none, the "
        "recipes').",
    )
    pseudo_label_threshold: float = described(
        0.95,
        "the confidence a weak view's prediction needs to become a pseudo-label, in (0, 1].",
    )
    pseudo_label_align: bool = described(
        False,
        "align the weak view's class distribution to uniform before thresholding (ReMixMatch's "
        "distribution alignment over the unlabeled batch): a class the batch over-predicts "
        "yields fewer pseudo-labels, one it under-predicts more, against one class taking "
        "another's images.",
    )
    strong_shift: int = described(
        4,
        "the strong view's shift (pseudo-labels, consistency): up to this many pixels in each "
        "direction.",
    )
    strong_rotate: float = described(
        0.0,
        "the strong view's rotation (pseudo-labels, consistency): up to this many degrees either "
        "way, after the shift (0: none; digits keep their class to about 30).",
    )
    strong_cutout: int = described(
        0,
        "the strong view's cutout (pseudo-labels, consistency): a square of this many pixels a "
        "side, centred on a random pixel, set to black, after the rotation (0: none).",
    )
    consistency_weight: float = described(
        0.0,
        "weight of UDA's consistency term on the unlabeled batch, added to the classifier's loss: "
        "the KL divergence from the prediction on each image's weak view to that on its strong "
        "view (the pseudo-labels' views), for every image, confident or not (0: none, the "
        "recipes').",
    )
    vat_weight: float = described(
        0.0,
        "weight of virtual adversarial training's term on the unlabeled batch, added to the "
        "classifier's loss: the KL divergence from the prediction on each image to that on the "
        "image moved by vat_epsilon in the direction that changes it most (0: none, the "
        "recipes').",
    )
    vat_epsilon: float = described(
        2.0,
        "L2 norm of virtual adversarial training's perturbation per image, in the model's pixel "
        "units: [0, 1] for mlp, where a digit's norm is about 9; [-1, 1] for conv, where the same "
        "epsilon is half as large a change.",
    )

    def __post_init__(self):
        super().__post_init__()
        if self.unlabeled is not None:
            check_name(self.unlabeled)
        for name in ("noise_dim", "num_samples"):
            require_positive(name, getattr(self, name))
        if not isinstance(self.fm_after_noise, bool):
            raise ConfigError(f"fm_after_noise must be True or False, got {self.fm_after_noise!r}")
        for name in ("entropy_weight", "balance_weight", "consistency_weight", "vat_weight"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ConfigError(
                    f"{name} must be >= 0, got {getattr(self, name)!r}; pass e.g. 1, or 0 for none"
                )
        if not self.unlabeled_weight >= 0:
            raise ConfigError(
                f"unlabeled_weight must be >= 0, got {self.unlabeled_weight!r}; pass e.g. 1"
            )
        if not isinstance(self.pseudo_label_align, bool):
            raise ConfigError(
                f"pseudo_label_align must be True or False, got {self.pseudo_label_align!r}"
            )
        if not self.pseudo_label_weight >= 0:
            raise ConfigError(
                f"pseudo_label_weight must be >= 0, got {self.pseudo_label_weight!r}; pass e.g. 1, "
                "or 0 for none"
            )
        if not 0 < self.pseudo_label_threshold <= 1:
            raise ConfigError(
                "pseudo_label_threshold must be in (0, 1], got "
                f"{self.pseudo_label_threshold!r}; pass e.g. 0.95"
            )
        for name, example in (("strong_shift", 4), ("strong_cutout", 8)):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, int) and value >= 0):
                raise ConfigError(
                    f"{name} must be a non-negative integer, got {value!r}; pass e.g. {example}"
                )
        if not 0 < self.vat_epsilon < math.inf:
            raise ConfigError(f"vat_epsilon must be > 0, got {self.vat_epsilon!r}; pass e.g. 2")
        if self.vat_weight and self.compute_dtype != "float32":
            raise ConfigError(
                f"vat_weight needs compute_dtype float32 ({self.compute_dtype} rounds away VAT's "
                "finite-difference step); drop --compute-dtype or --vat-weight"
            )
        if not 0 <= self.strong_rotate <= 180:
            raise ConfigError(
                f"strong_rotate must be in [0, 180] degrees, got {self.strong_rotate!r}; pass "
                "e.g. 20"
            )


def field_docs(kind: type) -> dict[str, str]:
    """Each field's help, `name → text`: the `help` metadata of its nearest declaration in `kind`'s
    bases that has one (a subclass that only changes a default keeps its base's help)."""
    docs: dict[str, str] = {}
    for field in dataclasses.fields(kind):
        for cls in kind.__mro__:
            declared = cls.__dict__.get("__dataclass_fields__", {}).get(field.name)
            if declared is not None and "help" in declared.metadata:
                docs[field.name] = declared.metadata["help"]
                break
    return docs


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# Each task's config class by task name, in the order the CLI lists them (`gan_jax.tasks.TASKS`
# maps the same names to the tasks; the CLI builds its options from these, without JAX).
CONFIGS: dict[str, type[RunConfig]] = {
    kind.task: kind
    for kind in (GANConfig, CGANConfig, SGANConfig, SupervisedConfig, FeatureNetConfig)
}
