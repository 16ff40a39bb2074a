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


@pytest.mark.parametrize("argv, message", [
    (["train", "gan", "--workdir", "W", "--batch-size", "0"], "expected a positive integer, got 0"),
    (["train", "gan", "--workdir", "W", "--epochs", "-3"], "expected a positive integer, got -3"),
    (["train", "gan", "--workdir", "W", "--steps", "many"], "expected a positive integer, got 'many'"),
    (["train", "gan", "--workdir", "W", "--learning-rate", "0"], "expected a positive number"),
    (["train", "gan", "--workdir", "W", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "gan"], "--workdir"),
    (["train", "wgan", "--workdir", "W"], "invalid choice: 'wgan'"),
    (["train", "gan", "--workdir", "W", "--data-source", "web"], "invalid choice: 'web'"),
    (["sample", "--workdir", "W", "--out", "x.png", "--num", "0"], "expected a positive integer"),
])
def test_cli_bad_values_exit_2_with_one_line(argv, message, capsys, tmp_path):
    argv = [str(tmp_path / "w") if a == "W" else a for a in argv]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("gan-jax")
    assert not (tmp_path / "w").exists()


def test_cli_workdir_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("keep me")
    assert run_cli(["train", "gan", "--workdir", path, "--steps", 1]) == 2
    assert "is a file" in capsys.readouterr().err
    assert path.read_text() == "keep me"


def test_cli_sample_errors(tmp_path, trained, capsys):
    assert run_cli(["sample", "--workdir", tmp_path / "empty", "--out", tmp_path / "x.png"]) == 2
    assert "no checkpoints in" in capsys.readouterr().err
    assert run_cli(["sample", "--workdir", trained, "--out", tmp_path / "x.jpg"]) == 2
    assert "--out must name a .png file" in capsys.readouterr().err


def test_cli_refuses_a_workdir_of_another_model_or_config(tmp_path, trained, capsys):
    other = tmp_path / "other"
    store = CheckpointStore(other)
    store.save(4, {"w": np.zeros(3, np.float32)}, {"task": "sgan", "labels": 100}, {})
    store.close()
    assert run_cli(["train", "gan", "--workdir", other, "--steps", 1]) == 2
    err = capsys.readouterr().err
    assert "holds checkpoints of task 'sgan', not 'gan'" in err and err.count("\n") == 1
    assert CheckpointStore(other).latest_step() == 4

    before = CheckpointStore(trained).latest_step()
    assert run_cli(["train", "gan", "--workdir", trained, "--steps", 9, "--batch-size", 16]) == 2
    assert "batch_size: stored 8 vs requested 16" in capsys.readouterr().err
    assert CheckpointStore(trained).latest_step() == before


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "gan_jax.cli", "train", "gan", "--help"],
                            capture_output=True, text=True, check=True)
    for option in ("--workdir", "--epochs", "--steps", "--batch-size", "--seed"):
        assert option in result.stdout
