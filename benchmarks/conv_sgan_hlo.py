"""Counts the convolutions, reductions and ops in the SGAN training step's HLO, and times the step here.

    python -m benchmarks.conv_sgan_hlo [--model conv] [--members 1,5] [--variants vmap,unrolled,one_pass]
                                       [--steps 20] [--hlo-dir DIR]

For each member count (data seeds trained at once) and variant it builds the model's recipe
(`SGANConfig.recipe`; conv: batch 32, 100 labels) on synthetic uint8 images, compiles one step
through the training runner (`gan_jax.steps.make_runner`) and prints one JSON line. Variants:

* `vmap`: the task's own step (members through `jax.vmap`).
* `unrolled` (member counts above 1): the member step called once per member in a Python loop, so
  no grouped convolutions.
* `one_pass`: `vmap` with the classifier's update running once on the labeled, unlabeled and fake
  batches concatenated (what the mlp family does). For the conv family this is a different
  function: BatchNorm normalizes with the statistics of all three batches together.

Each line holds the configuration, the environment (`gan_jax.bench.environment`) and:

* `stablehlo`: from the program before XLA's passes (`lowered.as_text()`): `convolutions` by kind
  (`plain`; `lhs_dilated`: a strided convolution's input-gradient or a transposed convolution;
  `filter_grad`: a kernel gradient, lhs dimensions `[f, 0, 1, b]`), `grouped_convolutions`
  (`feature_group_count` or `batch_group_count` > 1), `classifier_passes` (conv only: forward
  convolutions of 28×28 images into the classifier's first 32 channels per member) and
  `batch_spatial_reduces`: sums over the batch and both spatial axes (BatchNorm statistics and their
  gradients, bias gradients), by input shape.
* `compiled`: from the optimized program (`compiled.as_text()`): `entry_ops` (operations of the
  entry computation other than parameter, constant, tuple, get-tuple-element and bitcast, roughly the
  kernels launched per step), `instructions` (all, fused ones included), counts of chosen opcodes,
  and `custom_call_targets` (on a GPU, `__cudnn$convForward`/`convBackwardInput`/`convBackwardFilter`
  say how XLA mapped each convolution).
* `gflop_per_step`: XLA's cost analysis of the one-step program.
* `ms_per_step`: mean over at least `--steps` steps after at least 0.3 s of warm-up
  (`block_until_ready`), run `steps_per_call` steps per call as training does (1 on CPU; 50 in a
  `lax.scan` on accelerators).

XLA:CPU's program differs from XLA:GPU's: the generator's stride-2 transposed convolution with 128
outputs takes the sub-pixel form on CPU only (`gan_jax.models.layers._subpixel_pays`), and threefry
random bits run as rolled `while` loops on CPU only. The number of convolutions and their grouping do
not change; on a GPU 2 `plain` ones (that sub-pixel form) are `lhs_dilated` instead.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import pathlib
import re
import time

import jax
import jax.numpy as jnp

from gan_jax.bench import environment, program_flops, synthetic_mnist
from gan_jax.config import SGANConfig
from gan_jax.steps import Stream, TaskStep, default_steps_per_call, make_runner
from gan_jax.tasks import SGANTask

STEPS_PER_EPOCH = 50
VARIANTS = ("vmap", "unrolled", "one_pass")
_SHAPE = r"tensor<([\dx]+)xf32>"
_STABLE_CONV = re.compile(r"stablehlo\.convolution\(.*dim_numbers = \[([^\]]*)\]x.*lhs_dilate = \[([\d, ]+)\].*"
                          r"batch_group_count = (\d+).*feature_group_count = (\d+).*"
                          rf": \({_SHAPE}, {_SHAPE}\) -> {_SHAPE}")
# A sum over (batch, height, width) of an NHWC activation, with or without vmap's leading member axis.
_STABLE_REDUCE = re.compile(r"stablehlo\.reduce\(.*applies stablehlo\.add across dimensions = "
                            rf"(\[0, 1, 2\] : \({_SHAPE}|\[1, 2, 3\] : \(tensor<\d+x([\dx]+)xf32>),")
_HLO_OP = re.compile(r"^\s*(?:ROOT\s+)?%\S+ = (\([^)]*\)|\S+) ([\w-]+)\(")
_CUSTOM_CALL = re.compile(r'custom_call_target="([^"]+)"')
_BOOKKEEPING = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast"}
_OPCODES = ("convolution", "dot", "fusion", "reduce", "copy", "transpose", "while", "scatter", "gather",
            "custom-call", "infeed", "outfeed", "send", "recv")


def stablehlo_counts(text: str, channel_groups: int, model: str) -> dict:
    """Convolution kinds, grouped convolutions, classifier passes and batch-spatial reduces;
    `channel_groups`: members whose channels one convolution holds (the vmapped member count, else 1)."""
    kinds, groups, grouped, passes = collections.Counter(), collections.Counter(), 0, 0
    for line in text.splitlines():
        if not (m := _STABLE_CONV.search(line)):
            continue
        lhs_dims, lhs_dilate, batch_groups, feature_groups, lhs, _, out = m.groups()
        dilated = any(int(d) > 1 for d in lhs_dilate.split(","))
        kind = "filter_grad" if lhs_dims.startswith("f") else "lhs_dilated" if dilated else "plain"
        kinds[kind] += 1
        groups[f"feature_group_count={feature_groups},batch_group_count={batch_groups}"] += 1
        grouped += int(feature_groups) > 1 or int(batch_groups) > 1
        lhs_shape, out_shape = lhs.split("x"), out.split("x")
        passes += kind == "plain" and lhs_shape[1:3] == ["28", "28"] and out_shape[-1] == str(32 * channel_groups)
    shapes = (m.group(2) or m.group(3) for m in _STABLE_REDUCE.finditer(text))
    reduces = collections.Counter(s for s in shapes if s.count("x") == 3 and not s.startswith("1x"))  # not [1, 1, 1, C]
    return {"convolutions": sum(kinds.values()), "convolution_kinds": dict(kinds),
            "grouped_convolutions": grouped, "convolution_groups": dict(groups),
            "classifier_passes": passes if model == "conv" else None,
            "batch_spatial_reduces": sum(reduces.values()), "batch_spatial_reduces_by_shape": dict(reduces)}


def compiled_counts(text: str) -> dict:
    """Entry operations, all instructions, and chosen opcodes of an optimized HLO module."""
    entry = next(c for c in re.split(r"\n(?=\S)", text) if c.startswith("ENTRY"))
    ops = collections.Counter(m.group(2) for line in text.splitlines() if (m := _HLO_OP.match(line)))
    entry_ops = sum(1 for line in entry.splitlines() if (m := _HLO_OP.match(line)) and m.group(2) not in _BOOKKEEPING)
    finite_reduces = sum(1 for m in map(_HLO_OP.match, text.splitlines()) if m and m.group(2) == "reduce"
                         and m.group(1).startswith("pred[]"))
    return {"entry_ops": entry_ops, "instructions": sum(ops.values()), "finite_check_reduces": finite_reduces,
            **{name: ops[name] for name in _OPCODES},
            "custom_call_targets": dict(collections.Counter(_CUSTOM_CALL.findall(text)))}


def _member(tree, i: int):
    return jax.tree.map(lambda x: x[i], tree)


@dataclasses.dataclass(frozen=True)
class OnePassTask(SGANTask):
    """`SGANTask` whose classifier update makes one pass over the concatenated batches."""

    @property
    def family(self):
        return super().family._replace(classifier_batchnorm=False)


def unrolled_step(task: SGANTask):
    """The task's step with a Python loop over members in place of `jax.vmap`."""

    def step(models, batch, key):
        batch = task.feed.prepare(batch, jax.random.fold_in(key, Stream.FEED))
        rows = [task.member_train_step(_member(models, i), _member(batch, i), jax.random.fold_in(key, seed))
                for i, seed in enumerate(task.config.data_seeds)]
        return jax.tree.map(lambda *xs: jnp.stack(xs), *rows)

    return step


def measure(model: str, members: int, variant: str, steps: int, hlo_dir: pathlib.Path | None) -> dict:
    """One configuration's row (see the module docstring)."""
    config = SGANConfig.recipe(model, data_seeds=tuple(range(members)))
    task = OnePassTask(config) if variant == "one_pass" else SGANTask(config)
    step = unrolled_step(task) if variant == "unrolled" else TaskStep(task)
    train = synthetic_mnist(task.config.batch_size * STEPS_PER_EPOCH)
    data = jax.device_put(task.feed.arrays(train))
    plan = task.feed.epoch_plan(0, len(train.images))
    state = task.init(data)
    lowered = make_runner(step, 1).lower(state, task.feed.batches(data, plan, 0, 1))
    start = time.perf_counter()
    one_step = lowered.compile()
    compile_s = time.perf_counter() - start
    stable, optimized = lowered.as_text(), one_step.as_text()
    if hlo_dir:
        hlo_dir.mkdir(parents=True, exist_ok=True)
        (hlo_dir / f"{model}_m{members}_{variant}.stablehlo.mlir").write_text(stable)
        (hlo_dir / f"{model}_m{members}_{variant}.hlo.txt").write_text(optimized)

    per_call = default_steps_per_call(STEPS_PER_EPOCH, convolutions=task.convolutional)
    batches = task.feed.batches(data, plan, 0, per_call)
    run = one_step if per_call == 1 else make_runner(step, per_call).lower(state, batches).compile()

    def calls(count: int):
        nonlocal state
        for _ in range(count):
            state, metrics, _ = run(state, batches)
        jax.block_until_ready(metrics)

    warm_start = time.perf_counter()
    while time.perf_counter() - warm_start < 0.3:
        calls(1)
    count = -(-steps // per_call)
    start = time.perf_counter()
    calls(count)
    ms = 1000 * (time.perf_counter() - start) / (count * per_call)
    return {"model": model, "members": members, "variant": variant, "batch_size": task.config.batch_size,
            "g_loss": task.config.g_loss, "compile_s": round(compile_s, 2), "steps_per_call": per_call,
            "timed_steps": count * per_call, "ms_per_step": round(ms, 2),
            "gflop_per_step": round(program_flops(one_step) / 1e9, 3),
            "stablehlo": stablehlo_counts(stable, 1 if variant == "unrolled" else members, model),
            "compiled": compiled_counts(optimized), **environment()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="conv", choices=("conv", "mlp"))
    parser.add_argument("--members", default="1,5", help="comma-separated member counts (default 1,5)")
    parser.add_argument("--variants", default="vmap", help="comma-separated: vmap, unrolled, one_pass (default vmap)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per configuration (default 20)")
    parser.add_argument("--hlo-dir", type=pathlib.Path, help="also write each program's StableHLO and HLO here")
    args = parser.parse_args()
    variants = args.variants.split(",")
    if set(variants) - set(VARIANTS):
        parser.error(f"--variants must be a comma-separated subset of {','.join(VARIANTS)}, got {args.variants!r}")
    for members in (int(m) for m in args.members.split(",") if m):
        for variant in variants:
            if not (variant == "unrolled" and members == 1):
                print(json.dumps(measure(args.model, members, variant, args.steps, args.hlo_dir)), flush=True)


if __name__ == "__main__":
    main()
