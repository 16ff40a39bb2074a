import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gan_jax.checkpoint import CheckpointStore
from gan_jax.workdir import read_rows
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory, request):
    """A real-MNIST workdir trained for 2 steps of the tutorial DCGAN at batch 8."""
    request.getfixturevalue("mnist_train")  # the data cache exists before the CLI runs
    workdir = tmp_path_factory.mktemp("cli") / "run"
    assert (
        run_cli(
            ["train", "gan", "--workdir", workdir, "--steps", 2, "--batch-size", 8, "--no-progress"]
        )
        == 0
    )
    return workdir


def test_cli_train_writes_checkpoints_metrics_and_pngs(trained):
    assert CheckpointStore(trained).latest_step() == 2
    assert CheckpointStore(trained).read_config()["batch_size"] == 8
    rows = read_rows(trained)
    assert len(rows) == 1 and rows[0]["step"] == 2 and rows[0]["partial"]
    for name in ("samples/epoch_0001.png", "real_vs_generated.png", "losses.png"):
        assert (trained / name).exists(), name


def test_cli_sample_writes_a_grid(trained, tmp_path):
    out = tmp_path / "grid.png"
    assert run_cli(["sample", "--workdir", trained, "--num", 9, "--out", out]) == 0
    grid = np.asarray(Image.open(out))
    # 3x3 cells of 28 px + 2 px padding, x3
    assert grid.shape == ((3 * 30 + 2) * 3, (3 * 30 + 2) * 3)
    assert grid.std() > 0


def test_cli_sample_without_out_writes_into_the_workdir_and_prints_the_path(trained, capsys):
    assert run_cli(["sample", "--workdir", trained, "--num", 4, "--seed", 5]) == 0
    out = trained / "samples" / "sample_5.png"
    assert capsys.readouterr().out.strip().endswith(f"to {out}")
    assert np.asarray(Image.open(out)).shape == ((2 * 30 + 2) * 3, (2 * 30 + 2) * 3)
    out.unlink()


def test_cli_resume_with_same_command_continues(trained):
    assert (
        run_cli(
            ["train", "gan", "--workdir", trained, "--steps", 3, "--batch-size", 8, "--no-progress"]
        )
        == 0
    )
    assert CheckpointStore(trained).latest_step() == 3


def test_console_script_help():
    result = subprocess.run(
        [sys.executable, "-m", "gan_jax.cli", "train", "gan", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for option in ("--workdir", "--epochs", "--steps", "--batch-size", "--seed"):
        assert option in result.stdout


def test_cli_loss_options_reach_the_config(monkeypatch, tmp_path):
    import gan_jax.cli

    configs = []
    monkeypatch.setattr(gan_jax.cli, "_run_training", lambda config, args: configs.append(config))
    base = ["train", "cgan", "--workdir", tmp_path]
    assert run_cli([*base, "--loss", "wgan_gp", "--critic-steps", 5, "--gp-weight", 2.5]) == 0
    assert run_cli(base) == 0
    assert [(c.task, c.loss, c.critic_steps, c.gp_weight) for c in configs] == [
        ("cgan", "wgan_gp", 5, 2.5),
        ("cgan", "non_saturating", 1, 10.0),
    ]


def test_every_config_field_of_every_task_is_an_option_with_its_doc():
    import argparse
    import dataclasses

    from gan_jax.cli import build_parser
    from gan_jax.config import field_docs
    from gan_jax.tasks import TASKS

    train = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices["train"]
    commands = next(a for a in train._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(commands) == set(TASKS)
    for name, task in TASKS.items():
        options = {a.dest: a for a in commands[name]._actions}
        docs = field_docs(task.config_type)
        for field in dataclasses.fields(task.config_type):
            assert field.name in options, (name, field.name)
            assert options[field.name].help.startswith(
                docs[field.name].rstrip(".")[:40].replace("%", "%%")
            ), field.name
            assert options[field.name].default is None  # None = the recipe's value


def test_a_new_documented_field_needs_no_cli_edit():
    import dataclasses
    from typing import ClassVar

    from gan_jax.cli import _Parser
    from gan_jax.cli_options import add_config_options, make_config
    from gan_jax.config import GANConfig, described

    @dataclasses.dataclass(frozen=True)
    class WarmupConfig(GANConfig):
        """A GAN with a warm-up."""

        CHOICES: ClassVar[dict] = {**GANConfig.CHOICES, "schedule": ("constant", "cosine")}
        warmup_steps: int = described(0, "steps of linear learning-rate warm-up.")
        schedule: str = described("constant", "how the rate decays after the warm-up.")
        epochs: int = 3  # a new default keeps GANConfig's help

    parser = _Parser(prog="t")
    add_config_options(parser, WarmupConfig)
    shown = " ".join(parser.format_help().split())
    assert "steps of linear learning-rate warm-up (default 0)." in shown
    assert "passes over the training split (default 3)." in shown
    config = make_config(
        WarmupConfig,
        parser.parse_args(["--warmup-steps", "7", "--schedule", "cosine", "--recipe", "improved"]),
    )
    assert (config.warmup_steps, config.schedule, config.beta1) == (7, "cosine", 0.5)
    with pytest.raises(SystemExit):
        parser.parse_args(["--schedule", "linear"])


def test_recipe_defaults_show_in_help_and_options_override_them(monkeypatch, tmp_path):
    import gan_jax.cli

    help_text = subprocess.run(
        [sys.executable, "-m", "gan_jax.cli", "train", "sgan", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\n", " ")
    assert "(default: mlp 300, conv 5)" in " ".join(help_text.split())
    configs = []
    monkeypatch.setattr(gan_jax.cli, "_run_training", lambda config, args: configs.append(config))
    base = ["train", "sgan", "--workdir", tmp_path, "--labels", 20]
    assert run_cli([*base, "--model", "conv", "--epochs", 2, "--data-seed", 3]) == 0
    assert run_cli([*base, "--data-seeds", "1,2", "--no-fm-after-noise"]) == 0
    assert [(c.model, c.epochs, c.batch_size, c.data_seeds, c.fm_after_noise) for c in configs] == [
        ("conv", 2, 32, (3,), False),
        ("mlp", 300, 100, (1, 2), False),
    ]


def test_every_registered_task_is_a_train_command_even_the_feature_network(
    tmp_path, capsys, request
):
    import json

    request.getfixturevalue("mnist_train")
    workdir = tmp_path / "features"
    assert (
        run_cli(
            [
                "train",
                "features",
                "--workdir",
                workdir,
                "--steps",
                2,
                "--batch-size",
                8,
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert run_cli(["evaluate", "--workdir", workdir]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (
        report["task"] == "features" and report["step"] == 2 and 0 <= report["test_accuracy"] <= 1
    )


def test_a_field_without_help_or_with_an_unknown_type_is_named():
    import dataclasses

    from gan_jax.cli import _Parser
    from gan_jax.cli_options import add_config_options
    from gan_jax.config import GANConfig, described

    @dataclasses.dataclass(frozen=True)
    class Undocumented(GANConfig):
        """A field without help."""

        warmup_steps: int = 0

    @dataclasses.dataclass(frozen=True)
    class Rates(GANConfig):
        """Per-layer rates."""

        rates: tuple[float, ...] = described((1.0,), "one rate per layer.")

    with pytest.raises(TypeError, match=r"Undocumented.warmup_steps has no help, .*described"):
        add_config_options(_Parser(prog="t"), Undocumented)
    with pytest.raises(
        TypeError, match=r"Rates.rates: the CLI has no option type for tuple\[float, ...\]"
    ):
        add_config_options(_Parser(prog="t"), Rates)


def _all_parsers(parser):
    import argparse

    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_parsers(sub)


def test_every_option_value_is_shown_as_n_x_dir_path_or_a_list_and_has_no_alias():
    from gan_jax.cli import build_parser

    shown = set()
    for parser in _all_parsers(build_parser()):
        for action in parser._actions:
            names = [o for o in action.option_strings if not o.startswith("--no-")]
            assert len(names) <= 1 or names == ["-h", "--help"], names  # no aliases
            if action.option_strings and action.nargs != 0 and action.choices is None:
                shown.add((action.option_strings[0], action.metavar))  # None: the dest in capitals
    assert {metavar for _, metavar in shown} <= {
        "N",
        "X",
        "DIR",
        "PATH",
        "DATASET",
        "N,N,...",
        "NAME",
        "NAME,...",
    }, shown
    assert ("--keep-checkpoints", "N") in shown and ("--devices", "N") in shown
    help_text = subprocess.run(
        [sys.executable, "-m", "gan_jax.cli", "train", "gan", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--every-epoch" not in help_text.replace("-eval-every-epoch", "")


def test_steps_per_call_help_states_the_per_platform_rule():
    from gan_jax.config import SGANConfig, field_docs
    from gan_jax.steps import default_steps_per_call
    from gan_jax.tasks import make_task

    doc = field_docs(SGANConfig)["steps_per_call"]
    assert "an epoch on GPU/TPU" in doc and "on CPU 1 for the convolutional models" in doc
    assert "min(100, steps per epoch) for the `--model mlp` SGAN and supervised classifier" in doc
    mlp, conv = make_task(SGANConfig(labels=20)), make_task(SGANConfig.recipe("conv", labels=20))
    assert (mlp.convolutional, conv.convolutional) == (False, True)
    assert default_steps_per_call(600, "cpu", convolutions=False) == 100
    assert default_steps_per_call(600, "cpu", convolutions=True) == 1
    assert default_steps_per_call(600, "gpu", convolutions=False) == 600


def test_a_mistyped_option_is_named_by_its_subcommand_with_the_closest_option(capsys):
    assert (
        run_cli(["train", "sgan", "--labels", "100", "--batchsize", "3", "--workdir", "unused"])
        == 2
    )
    assert capsys.readouterr().err.strip() == (
        "gan-jax train sgan: error: unrecognized arguments: --batchsize 3; "
        "did you mean --batch-size? (see `gan-jax train sgan --help`)"
    )


@pytest.mark.parametrize(
    "argv, code",
    [
        (["--help"], 0),
        (["train", "sgan", "--help"], 0),
        (["train", "sgan", "--workdir", "W", "--labels", "105"], 2),  # a value the config refuses
        (["train", "gan", "--workdir", "W", "--batch-sise", "3"], 2),  # a mistyped option
        (["evaluate"], 2),  # a missing one
    ],
)
def test_help_and_argument_errors_come_before_jax_is_imported(argv, code, tmp_path):
    script = (
        "import sys\n"
        "from gan_jax import cli\n"
        "try:\n"
        "    code = cli.main(sys.argv[1:])\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "print('jax imported' if 'jax' in sys.modules else 'no jax', code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.stdout.splitlines()[-1] == f"no jax {code}", done.stderr
    assert not (tmp_path / "W").exists()
