"""The formatter, linter and type checker pass over gan_jax/ (settings in pyproject.toml)."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parent.parent


@pytest.mark.parametrize(
    "tool",
    [["ruff", "format", "--check"], ["ruff", "check"], ["mypy"]],
    ids=lambda tool: " ".join(tool),
)
def test_gan_jax_is_clean(tool):
    done = subprocess.run(
        [sys.executable, "-m", *tool, "gan_jax"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
