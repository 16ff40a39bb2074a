"""Configs: validation of bad values (the CLI's forms of these are in test_bad_input.py)."""

import pytest

from gan_jax import ConfigError, GANConfig


@pytest.mark.parametrize(
    "bad",
    [
        dict(batch_size=0),
        dict(epochs=-1),
        dict(dropout=1.0),
        dict(seed=-2),
        dict(g_features=(8, 4)),
        dict(learning_rate=0.0),
        dict(data_source="web"),
        dict(loss="wasserstein"),
        dict(critic_steps=0),
        dict(gp_weight=-1.0),
        dict(dataset="svhn"),
    ],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        GANConfig(**bad)


def test_the_gan_recipes_train_20_epochs_unless_told_otherwise():
    from gan_jax import CGANConfig
    from gan_jax.cli import build_parser
    from gan_jax.cli_options import make_config

    assert GANConfig().epochs == 20 and CGANConfig().epochs == 20
    assert [GANConfig.recipe(name).epochs for name in GANConfig.RECIPES] == [20, 20]
    args = build_parser().parse_args(["train", "gan", "--workdir", "w", "--epochs", "50"])
    assert make_config(GANConfig, args).epochs == 50
