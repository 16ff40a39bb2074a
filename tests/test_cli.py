import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gan_jax.checkpoint import CheckpointStore
from gan_jax.cli import main
from gan_jax.loop import read_metrics


def run_cli(argv):
    """main(argv) → exit code, whether argparse exits or main returns."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


@pytest.fixture(scope="module")
def trained(tmp_path_factory, request):
    """A real-MNIST workdir trained for 2 steps of the tutorial DCGAN at batch 8."""
    request.getfixturevalue("mnist_train")  # the data cache exists before the CLI runs
    workdir = tmp_path_factory.mktemp("cli") / "run"
    assert run_cli(["train", "gan", "--workdir", workdir, "--steps", 2, "--batch-size", 8, "--no-progress"]) == 0
    return workdir


def test_cli_train_writes_checkpoints_metrics_and_pngs(trained):
    assert CheckpointStore(trained).latest_step() == 2
    assert CheckpointStore(trained).read_config()["batch_size"] == 8
    rows = read_metrics(trained)
    assert len(rows) == 1 and rows[0]["step"] == 2 and rows[0]["partial"]
    for name in ("samples/epoch_0001.png", "real_vs_generated.png", "losses.png"):
        assert (trained / name).exists(), name


def test_cli_sample_writes_a_grid(trained, tmp_path):
    out = tmp_path / "grid.png"
    assert run_cli(["sample", "--workdir", trained, "--num", 9, "--out", out]) == 0
    grid = np.asarray(Image.open(out))
    assert grid.shape == ((3 * 30 + 2) * 3, (3 * 30 + 2) * 3)  # 3x3 cells of 28 px + 2 px padding, x3
    assert grid.std() > 0


def test_cli_resume_with_same_command_continues(trained):
    assert run_cli(["train", "gan", "--workdir", trained, "--steps", 3, "--batch-size", 8, "--no-progress"]) == 0
    assert CheckpointStore(trained).latest_step() == 3


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "gan_jax.cli", "train", "gan", "--help"],
                            capture_output=True, text=True, check=True)
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
        ("cgan", "wgan_gp", 5, 2.5), ("cgan", "non_saturating", 1, 10.0)]
