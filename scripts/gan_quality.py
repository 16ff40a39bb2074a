"""Compare GAN recipes by sample quality: train each, score every epoch, print JSON, write a table.

    python -m scripts.gan_quality --epochs 3 --out runs/gan_quality --name gan_quality_cpu

Runs (each `GANConfig` on the tutorial's architecture and batch 256):
  tutorial      the TensorFlow tutorial: Adam 1e-4, beta1 0.9 (the baseline row)
  dcgan_adam    DCGAN's Adam: 2e-4, beta1 0.5 (Radford et al. 2016); what `--recipe improved` became
  ttur_ema      TTUR (G 1e-4, D 4e-4; Heusel et al. 2017), beta1 0.5, generator EMA 0.999
                (Yazıcı et al. 2019); its raw generator is scored too.
  cgan          the conditional GAN with ttur_ema's settings; also scored by digit accuracy (the
                feature network's accuracy on the digits the samples were asked for).
  dcgan_adam_bf16  dcgan_adam in mixed precision (bfloat16 compute, float32 parameters/optimizer).
Each run's metrics.jsonl gets FD / IS / confident share per epoch (10,000 samples against the test
set). Writes OUT/<run>/, and benchmarks/results/NAME.json and NAME.md; rerunning resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import platform
import time

import jax

from gan_jax.api import load_run
from gan_jax.config import CGANConfig, GANConfig
from gan_jax.evaluate import sample_quality
from gan_jax.features import load_feature_network
from gan_jax.loop import train
from gan_jax.steps import enable_compilation_cache
from gan_jax.workdir import read_rows

RUNS = {
    "tutorial": GANConfig.recipe("tutorial"),
    "dcgan_adam": GANConfig.recipe("improved"),
    "ttur_ema": GANConfig(learning_rate=1e-4, d_learning_rate=4e-4, beta1=0.5, g_ema_decay=0.999),
    "cgan": CGANConfig(learning_rate=1e-4, d_learning_rate=4e-4, beta1=0.5, g_ema_decay=0.999),
    "dcgan_adam_bf16": GANConfig.recipe("improved", compute_dtype="bfloat16"),
}
SCORES = ("fd", "inception_score", "confident", "digit_accuracy")
RESULTS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--name", default="gan_quality")
    parser.add_argument("--runs", default=",".join(RUNS))
    parser.add_argument(
        "--seed", type=int, default=0, help="every run's seed (initialization, data order, noise)"
    )
    args = parser.parse_args()
    enable_compilation_cache()
    network = load_feature_network()
    rows = []
    for name in args.runs.split(","):
        config = dataclasses.replace(
            RUNS[name], epochs=args.epochs, eval_every_epoch=True, seed=args.seed
        )
        started = time.perf_counter()
        train(config, args.out / name, progress=False)
        metrics = [r for r in read_rows(args.out / name) if not r.get("partial")]
        row = {
            "run": name,
            "config": {
                k: v
                for k, v in config.to_dict().items()
                if k in ("learning_rate", "d_learning_rate", "beta1", "g_ema_decay")
            },
            "epochs": metrics[-1]["epoch"],
            "steps": metrics[-1]["step"],
            "per_epoch": [{k: r[k] for k in ("epoch", *SCORES) if k in r} for r in metrics],
            **{k: metrics[-1][k] for k in SCORES if k in metrics[-1]},
            "fd_floor": network.fd_floor,
            "seconds_this_invocation": round(time.perf_counter() - started, 1),
        }
        if config.g_ema_decay:
            task, state = load_run(args.out / name)
            raw = type(task)(dataclasses.replace(task.config, g_ema_decay=0.0))
            row["raw_generator"] = sample_quality(raw, state)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}",
        "seed": args.seed,
        "jax": jax.__version__,
        "feature_net_test_accuracy": network.test_accuracy,
        "fd_floor": network.fd_floor,
        "runs": rows,
    }
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{args.name}.md").write_text(markdown(result))


def markdown(result: dict) -> str:
    lines = [
        "| run | lr G / D | beta1 | G EMA | epochs | FD ↓ | IS ↑ | confident ↑ "
        "| digit accuracy ↑ |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        c = r["config"]
        lines.append(
            f"| {r['run']} | {c['learning_rate']:g} / "
            f"{c['d_learning_rate'] or c['learning_rate']:g} | "
            f"{c['beta1']} | {c['g_ema_decay'] or '—'} | {r['epochs']} | {r['fd']:.2f} | "
            f"{r['inception_score']:.2f} | {r['confident']:.3f} | "
            f"{_optional(r.get('digit_accuracy'))} |"
        )
        if "raw_generator" in r:
            q = r["raw_generator"]
            lines.append(
                f"| {r['run']} (raw G, no EMA) | | | | {r['epochs']} | {q['fd']:.2f} | "
                f"{q['inception_score']:.2f} | {q['confident']:.3f} | "
                f"{_optional(q.get('digit_accuracy'))} |"
            )
    lines.append(f"| real training images (the floor) | | | | | {result['fd_floor']:.2f} | | | |")
    return "\n".join(lines) + "\n"


def _optional(value) -> str:
    return "—" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
