"""`gan-jax bench` prints one well-formed JSON line per configuration (speed is never asserted)."""

import json

import jax
import pytest

from gan_jax import bench
from gan_jax.cli import main


@pytest.mark.slow
def test_bench_prints_one_json_line_per_configuration(capsys):
    code = main(
        [
            "bench",
            "--models",
            "dcgan,sgan",
            "--batch-sizes",
            "4",
            "--steps",
            "1",
            "--sgan-steps",
            "2",
            "--sgan-members",
            "2",
            "--steps-per-call",
            "1",
        ]
    )
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["model"], r.get("members")) for r in rows] == [("dcgan", None), ("sgan_mlp", 2)]
    for row in rows:
        for key in (
            "steps_per_s",
            "images_per_s",
            "compile_s",
            "gflop_per_step",
            "achieved_gflops",
            "matmul_peak_gflops_f32",
            "matmul_peak_gflops_bf16",
            "peak_memory_bytes",
            "program_memory_bytes",
            "jax",
            "jaxlib",
            "device",
            "xla_flags",
        ):
            assert key in row, key
        assert row["steps_per_s"] > 0 and row["gflop_per_step"] > 0
    # images/s counts every member's batch
    assert rows[1]["images_per_s"] == pytest.approx(rows[1]["steps_per_s"] * 100 * 2, rel=1e-3)
    for row in rows:  # the timed count is the requested one rounded up to whole compiled calls
        assert (
            row["timed_steps"] >= row["requested_steps"]
            and row["timed_steps"] % row["steps_per_call"] == 0
        )
    assert rows[1]["timed_steps"] == 2 and rows[0]["matmul_n"] == bench.matmul_size()
    if jax.default_backend() == "cpu":
        # the tutorial DCGAN at batch 4 does ~0.43 GFLOP per image per step (issue 4's count). Only
        # XLA:CPU's cost analysis counts convolutions; on GPU they are cuDNN calls it leaves out.
        assert 0.2 < rows[0]["gflop_per_step"] / 4 < 0.6


def test_matmul_size_is_chosen_per_platform():
    assert (
        bench.matmul_size("cpu") == 2048
        and bench.matmul_size("gpu") == bench.matmul_size("tpu") == 8192
    )


def test_matmul_peak_is_positive_for_both_dtypes():
    assert bench.matmul_peak_gflops("float32", n=128, repeats=1) > 0
    assert bench.matmul_peak_gflops("bfloat16", n=128, repeats=1) > 0


@pytest.mark.parametrize(
    "argv, problem",
    [
        (["--models", "dcgan,vae"], "--models must be"),
        (["--dtypes", "float16"], "--dtypes must be"),
    ],
)
def test_bench_rejects_unknown_models_and_dtypes(capsys, argv, problem):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert problem in err and len(err.splitlines()) == 1
