"""Shared fixtures: tiny models and data so the suite runs on a 2-core CPU."""

import atexit
import faulthandler
import os
import re
import shutil
import tempfile

import jax
import numpy as np
import pytest

from gan_jax import GANConfig
from gan_jax.data import Split
from gan_jax.devices import deterministic_by_default, deterministic_gpu_ops

# One compilation cache for the whole session, shared by the pytest-xdist workers (they inherit
# the controller's environment) and the CLI subprocesses the tests start: the same programs that
# are slow to compile are compiled once, not once per process. The process that made it removes
# it at exit.
_XLA_CACHE = os.environ.get("GAN_JAX_TEST_XLA_CACHE")
if _XLA_CACHE is None:
    _XLA_CACHE = os.environ["GAN_JAX_TEST_XLA_CACHE"] = tempfile.mkdtemp(prefix="gan_jax_test_xla_")
    atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)  # ~30 MB
# The tests' programs are tiny: compiling them costs far more than running them, and XLA:CPU's
# LLVM optimizations are most of the compile time (at 405 tests the suite took 8 min 49 s with
# them, 5 min 18 s without: commit 4003036). Tests compare runs made under the same flags, so
# results are still compared like for like, with bounds that hold at any optimization level and
# vector width (tests/numerics.py; `python -m scripts.numerics_matrix` runs them at level 3 too);
# the library never sets this.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()
# What `gan_jax.setup_process()` does for the CLI, which the tests' in-process runs skip: XLA:GPU's
# deterministic reductions, scatters and convolution algorithms, without which a resumed run is not
# bit-identical to an uninterrupted one on a GPU (no effect on CPU).
deterministic_gpu_ops(deterministic_by_default())
# The suite's results are XLA's, whether or not this machine built the oneDNN convolutions;
# tests/test_onednn.py runs that path (and GAN_JAX_CONV=onednn runs the whole suite on it).
os.environ.setdefault("GAN_JAX_CONV", "xla")
# Only programs that took over 0.2 s to compile are written: in tests/test_loop.py and
# tests/tasks/test_sgan.py 64 of 354 compiles, 131 of their 146 s, and the suite ran faster than
# when it wrote them all (842 s against 882 s).
_MIN_COMPILE_SECONDS = "0.2"
os.environ["JAX_COMPILATION_CACHE_DIR"] = _XLA_CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = _MIN_COMPILE_SECONDS
jax.config.update("jax_compilation_cache_dir", _XLA_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", float(_MIN_COMPILE_SECONDS))


# A pytest-xdist worker that dies in native code prints its threads' Python stacks (faulthandler)
# into the middle of the log; each worker writes them to a file here instead, and the controller
# prints them again beside the short summary, where a truncated CI log still shows them.
_CRASH_DIR = os.environ.get("GAN_JAX_TEST_CRASH_DIR")
if _CRASH_DIR is None:
    _CRASH_DIR = os.environ["GAN_JAX_TEST_CRASH_DIR"] = tempfile.mkdtemp(prefix="gan_jax_crash_")
    atexit.register(shutil.rmtree, _CRASH_DIR, ignore_errors=True)
_crash_log = None  # kept open for faulthandler for the worker's whole life
_RUNNER_FRAME = re.compile(r"/(_pytest|pluggy|execnet|xdist)/")  # frames of pytest's own machinery


@pytest.hookimpl(trylast=True)  # after pytest's faulthandler plugin has pointed it at stderr
def pytest_configure(config):
    """Under pytest-xdist the controller builds MNIST's offline cache (a no-op once built) before
    the workers start: two workers building it at once would race on its files. Each worker sends
    faulthandler's stacks to its file in `_CRASH_DIR`."""
    global _crash_log
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        _crash_log = open(os.path.join(_CRASH_DIR, f"{worker['workerid']}.log"), "w")  # noqa: SIM115
        faulthandler.enable(file=_crash_log, all_threads=True)
    elif getattr(config.option, "numprocesses", None):
        from gan_jax.data import load

        load("mnist", "train", source="offline")


def pytest_terminal_summary(terminalreporter):
    """The stacks of workers that crashed (their faulthandler files), last thing before the
    short summary."""
    if hasattr(terminalreporter.config, "workerinput"):
        return
    for name in sorted(os.listdir(_CRASH_DIR)):
        with open(os.path.join(_CRASH_DIR, name)) as log:
            text = log.read().strip()
        lines = [line for line in text.splitlines() if not _RUNNER_FRAME.search(line)]
        if lines:
            terminalreporter.section(f"{name[:-4]} crashed: its threads' Python stacks", sep="!")
            terminalreporter.write_line("\n".join(lines[:100]))


# Longest files first (pytest-xdist keeps this order with --no-loadscope-reorder, see pyproject),
# so they overlap with the many short ones instead of ending the run alone; test_slurm.py mostly
# waits on SLURM's 30-second clock.
LONGEST_FIRST = (
    "test_slurm.py",
    "test_parallel.py",
    "test_sgan.py",
    "test_multiprocess.py",
    "test_sweep.py",
    "test_layouts.py",
    "test_robustness.py",
    "test_classify.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    # stable: files stay whole
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))


def run_cli(argv):
    """`gan_jax.cli.main(argv)` → its exit code, whether argparse exits or main returns."""
    from gan_jax.cli import main

    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


TINY = dict(batch_size=8, noise_dim=8, g_features=(8, 4, 4), d_features=(4, 8), num_samples=4)


# XLA:CPU maps each compiled program's code into three memory regions that live as long as JAX's
# caches hold the program. A worker that kept all its tests' programs grew to 54,706 mappings,
# near Linux's limit of 65,530 per process (`vm.max_map_count`), where LLVM's next allocation
# fails ("Cannot allocate memory") and XLA segfaults (checked with the limit lowered to 6,000).
_MAX_MEMORY_MAPS = 15_000  # tests/tasks/test_sgan.py's resume test alone adds ~6,000


def _memory_maps() -> int:
    """This process's memory mappings (0 where /proc is not mounted: no Linux limit to keep)."""
    try:
        with open("/proc/self/maps", "rb") as maps:
            return sum(1 for _ in maps)
    except OSError:
        return 0


@pytest.fixture(autouse=True)
def _compiled_programs_freed():
    """Clears JAX's caches after a test that leaves the process over `_MAX_MEMORY_MAPS`; the
    programs later tests share come back from the persistent cache or compile again."""
    yield
    if _memory_maps() > _MAX_MEMORY_MAPS:
        jax.clear_caches()


@pytest.fixture(autouse=True)
def _records_reach_caplog():
    """The `gan_jax` logger propagates to the root logger, where pytest's caplog listens.

    Importing gan_jax (and every in-process `main()`) installs its own handler instead; that
    handler has its own test (test_logs.py).
    """
    from gan_jax import logs

    logs.use_standard_logging()


@pytest.fixture
def tiny_config():
    """A GAN config small enough to compile and step in about a second."""
    return GANConfig(epochs=1, **TINY)


@pytest.fixture
def tiny_data():
    """40 synthetic uint8 digits-shaped images (5 steps of 8 per epoch)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28, 1), dtype=np.uint8)
    return Split(images, rng.integers(0, 10, 40).astype(np.int32))


@pytest.fixture(scope="session")
def mnist_train():
    """The real MNIST training split through the offline route (fetched once per machine)."""
    from gan_jax.data import load

    return load("mnist", "train", source="offline")


@pytest.fixture(scope="session")
def tiny_features(tmp_path_factory, mnist_train):
    """A 30-step feature network, cached in a temporary folder and made the session's default."""
    from gan_jax import features
    from gan_jax.api import train_feature_network
    from gan_jax.config import FeatureNetConfig

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GAN_JAX_FEATURES", str(tmp_path_factory.mktemp("features")))
        patch.setattr(
            features,
            "FEATURE_NET",
            FeatureNetConfig(
                epochs=1, steps=30, batch_size=32, widths=(4,), hidden=8, data_source="offline"
            ),
        )
        yield train_feature_network(progress=False)
