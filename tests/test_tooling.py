"""The formatter and linter pass over gan_jax/, scripts/ and tests/, the type checker over gan_jax/
and scripts/ (settings in pyproject.toml); the suite's guard against Linux's map limit works."""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from tests.conftest import _memory_maps

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


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="no /proc: no map limit")
def test_clearing_jax_caches_unmaps_compiled_programs():
    """`tests/conftest.py` keeps workers under Linux's per-process map limit by clearing JAX's
    caches; that only works while clearing them unmaps the compiled programs."""
    jax.clear_caches()
    before = _memory_maps()
    programs = [jax.jit(lambda x, i=i: x * i + 1.0) for i in range(100)]
    for program in programs:
        program(jnp.ones(3)).block_until_ready()
    grown = _memory_maps() - before
    jax.clear_caches()
    assert grown >= 100, grown  # at least a mapping per program
    assert _memory_maps() - before < grown / 4
