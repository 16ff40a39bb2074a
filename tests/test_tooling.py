"""The formatter and linter pass over gan_jax/, scripts/ and tests/, the type checker over gan_jax/
and scripts/ (settings in pyproject.toml)."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parent.parent


@pytest.mark.parametrize(
    "tool, paths",
    [
        (["ruff", "format", "--check"], ["gan_jax", "scripts", "tests"]),
        (["ruff", "check"], ["gan_jax", "scripts", "tests"]),
        (["mypy"], ["gan_jax", "scripts"]),
    ],
    ids=["ruff format --check", "ruff check", "mypy"],
)
def test_the_code_is_clean(tool, paths):
    done = subprocess.run(
        [sys.executable, "-m", *tool, *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
