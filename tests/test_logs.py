"""The `gan_jax` logger: train() from Python prints the CLI's epoch lines, each on its own line
above the progress bar, and the caller can quiet it."""

import subprocess
import sys
import textwrap

TRAIN = textwrap.dedent("""
    import logging, sys
    import numpy as np
    import gan_jax
    gan_jax.setup_process()
    if sys.argv[1] == "quiet":
        logging.getLogger("gan_jax").setLevel(logging.WARNING)
    rng = np.random.default_rng(0)
    data = gan_jax.Split(rng.integers(0, 256, (40, 28, 28, 1), dtype=np.uint8),
                         np.zeros(40, np.int32))
    config = gan_jax.GANConfig(epochs=2, batch_size=8, noise_dim=8, g_features=(8, 4, 4),
                               d_features=(4, 8), num_samples=4)
    gan_jax.train(config, sys.argv[2], data=data, progress=True)
""")


def run(tmp_path, mode):
    result = subprocess.run(
        [sys.executable, "-c", TRAIN, mode, str(tmp_path / mode)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_train_from_python_prints_labelled_epoch_lines_above_the_bar(tmp_path):
    err = run(tmp_path, "loud")
    # tqdm redraws its bar with carriage returns;
    # what a terminal shows of a line is its last segment.
    shown = [line.split("\r")[-1] for line in err.split("\n")]
    epoch_lines = [line for line in shown if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epoch_lines] == [
        "epoch 1 step 5",
        "epoch 1",
        "epoch 2 step 10",
        "epoch 2",
    ]
    assert "d_loss" in epoch_lines[0] and "g_loss" in epoch_lines[0]
    assert "steps/s" in epoch_lines[1] and " s (" in epoch_lines[1]
    for line in err.split(
        "\n"
    ):  # no log text glued to a bar: a line holding a bar's rate holds no message
        if "step/s]" in line or "s/step]" in line:
            assert "epoch" not in line.split("\r")[-1] and "training" not in line, line
    assert not any(
        line.strip().endswith("steps/s") and not line.startswith("epoch") for line in shown
    )


def test_the_caller_can_quiet_the_logger(tmp_path):
    err = run(tmp_path, "quiet")
    assert "epoch 1 step 5" not in err and "training" not in err


def test_importing_leaves_the_process_alone_and_setup_quiets_the_stores_echoes_once():
    code = textwrap.dedent("""
        import logging, sys
        hook = sys.unraisablehook
        import gan_jax
        assert sys.unraisablehook is hook and not logging.getLogger("absl").filters
        gan_jax.setup_process(); gan_jax.setup_process()
        assert sys.unraisablehook.keywords["previous"] is hook
        assert (len(logging.getLogger("absl").filters)
                == len(logging.getLogger("asyncio").filters) == 1)
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
