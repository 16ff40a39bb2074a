"""`gan-jax`: argparse → config → task → loop.

Exit codes: 0 done; 2 a user mistake (one line on stderr, nothing changed); 3 training diverged
(NaN/Inf; the last good checkpoint is kept); 130/143 stopped by Ctrl-C/SIGTERM after saving a
checkpoint (run the same command to resume).
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys

from gan_jax.config import COMPUTE_DTYPES, DATA_SOURCES, G_LOSSES, GAN_RECIPES, MODELS
from gan_jax.datasets import DATASETS, names_with_shape
from gan_jax.errors import TrainingStopped, UserError
from gan_jax.logs import install_default_handler
from gan_jax.losses import GAN_LOSSES

PROG = "gan-jax"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit code 2, and which takes no abbreviations
    (`--epoch 1` is an error, not `--epochs 1`)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

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


def int_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated non-negative integers, e.g. `20,50,100`."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated non-negative integers, got {text!r}")
    return values


def _add_classifier_args(parser: argparse.ArgumentParser, *, sgan: bool, sweep: bool = False) -> None:
    """Options shared by `train sgan`, `train supervised` and `sweep`; None means the model's recipe."""
    if not sweep:
        parser.add_argument("--workdir", required=True, type=pathlib.Path,
                            help="folder for checkpoints/, metrics.jsonl (per-epoch test accuracy) and PNGs")
        parser.add_argument("--labels", required=True, type=int,
                            help="labeled training images, a positive multiple of 10 (labels/10 per digit)")
        seeds = parser.add_mutually_exclusive_group()
        seeds.add_argument("--data-seed", type=_non_negative_int, default=None,
                           help="picks the labeled subset and the run's random streams (default 0)")
        seeds.add_argument("--data-seeds", type=int_list, default=None,
                           help="several data seeds, e.g. 0,1,2,3,4, trained together in one vmapped program")
    parser.add_argument("--model", choices=MODELS, default="mlp",
                        help="mlp: Improved GAN's weight-normalized MLP (default); conv: the seed's CNN")
    parser.add_argument("--epochs", type=_positive_int, default=None, help="epochs of N/batch steps (N training images) "
                        "(default: the model's recipe, mlp 300, conv 5)")
    parser.add_argument("--steps", type=_positive_int, default=None, help="stop after this many steps in total")
    parser.add_argument("--batch-size", type=_positive_int, default=None, help="default: mlp 100, conv 32")
    parser.add_argument("--seed", type=_non_negative_int, default=None, help="initialization and noise (default 0)")
    parser.add_argument("--learning-rate", type=_positive_float, default=None, help="Adam (default: mlp 3e-3, conv 1e-3)")
    parser.add_argument("--beta1", type=float, default=None, help="Adam's beta1 (default: mlp 0.5, conv 0.9)")
    parser.add_argument("--ema-decay", type=float, default=None,
                        help="evaluate an EMA of the classifier with this decay; 0 = off (default: mlp 0.9999, conv 0)")
    parser.add_argument("--adam-eps", type=float, default=None,
                        help="Adam's epsilon outside the square root (default: mlp 0, conv 1e-8)")
    parser.add_argument("--adam-eps-root", type=float, default=None,
                        help="Adam's epsilon inside the square root, as Improved GAN's script (default: mlp 1e-8, conv 0)")
    if sgan:
        parser.add_argument("--g-loss", choices=G_LOSSES, default=None,
                            help="generator loss: feature_matching_l1 (mean |gap|, Bad GAN's), feature_matching "
                                 "(mean square, Improved GAN's) or non_saturating (default: mlp feature_matching_l1, "
                                 "conv non_saturating)")
        parser.add_argument("--fm-after-noise", action=argparse.BooleanOptionalAction, default=None,
                            help="mlp: match the last hidden layer after its Gaussian noise (default) or before it "
                                 "(--no-fm-after-noise, Improved GAN's script)")
        parser.add_argument("--unlabeled-weight", type=float, default=None,
                            help="weight of the real/fake loss (default 1)")
        parser.add_argument("--noise-dim", type=_positive_int, default=None, help="generator input size (default 100)")
    parser.add_argument("--steps-per-call", type=_positive_int, default=None,
                        help="steps per compiled call (default: per platform); speed only")
    parser.add_argument("--compute-dtype", choices=COMPUTE_DTYPES, default=None,
                        help="mlp: the matrix products' input dtype (default float32; bfloat16 = mixed precision, "
                             "see benchmarks/results/README.md)")
    if not sweep:
        _add_devices_arg(parser)
    parser.add_argument("--checkpoint-every", type=_positive_int, default=None,
                        help="also save a checkpoint every N steps (default: at epoch ends, see --checkpoint-seconds)")
    parser.add_argument("--data-source", choices=DATA_SOURCES, default=None,
                        help="data route (default auto: TFDS if prepared, else the offline cache)")
    if sweep:
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    else:
        _add_output_args(parser)


def _add_output_args(parser: argparse.ArgumentParser) -> None:
    """Options of every `train` command that change what is written or shown, never results."""
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar (epoch lines stay)")
    parser.add_argument("--keep-checkpoints", type=_positive_int, default=3,
                        help="newest checkpoints kept in WORKDIR/checkpoints (default 3; each holds both models "
                             "and their Adam states)")
    parser.add_argument("--no-tensorboard", action="store_true",
                        help="do not write TensorBoard event files into WORKDIR")
    parser.add_argument("--checkpoint-seconds", type=_bounded(float, lambda v: v >= 0, "a number >= 0"), default=None,
                        help="save at an epoch's end only once S seconds have passed since the last save; 0 = every "
                             "epoch (default: automatic, at most 2%% of the time spent saving; the run's end, Ctrl-C/SIGTERM "
                             "and --checkpoint-every always save)")


def _add_devices_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=_positive_int, default=None,
                        help="data-parallel over the first N devices (default: all; batch sharded, states "
                             "replicated); speed only")


def _add_gan_args(parser: argparse.ArgumentParser) -> None:
    """Options of `train gan` and `train cgan`; None means the recipe's value."""
    parser.add_argument("--workdir", required=True, type=pathlib.Path,
                        help="folder for checkpoints/, metrics.jsonl, samples/ and the final PNGs")
    parser.add_argument("--recipe", choices=tuple(GAN_RECIPES), default="tutorial",
                        help="tutorial: the TensorFlow tutorial's settings (default); improved: DCGAN's Adam, "
                             "2e-4 and beta1 0.5 (benchmarks/results/gan_quality_cpu.md)")
    parser.add_argument("--epochs", type=_positive_int, default=None, help="passes over the training split (default 50)")
    parser.add_argument("--steps", type=_positive_int, default=None,
                        help="stop after this many steps in total, for quick runs (default: all epochs)")
    parser.add_argument("--batch-size", type=_positive_int, default=None, help="images per step (default 256)")
    parser.add_argument("--seed", type=_non_negative_int, default=None,
                        help="decides initialization, data order and noise (default 0)")
    parser.add_argument("--learning-rate", type=_positive_float, default=None, help="Adam step size (default 1e-4; improved 2e-4)")
    parser.add_argument("--d-learning-rate", type=_positive_float, default=None,
                        help="the discriminator's Adam step size (default: --learning-rate); two rates make TTUR")
    parser.add_argument("--beta1", type=float, default=None, help="Adam's beta1 (default 0.9; improved 0.5)")
    parser.add_argument("--g-ema-decay", type=float, default=None,
                        help="sample from an EMA of the generator with this decay; 0 = off (default 0)")
    parser.add_argument("--eval-every-epoch", "--every-epoch", action="store_true", default=None,
                        help="add FD, Inception Score and confident share of generated images to each epoch's "
                             "metrics.jsonl row (the packaged feature network; about 20 s per 10,000 samples on a 2-core CPU)")
    parser.add_argument("--eval-samples", type=_bounded(int, lambda v: v >= 2, "an integer >= 2"), default=None,
                        help="generated images per per-epoch evaluation (default 10000)")
    parser.add_argument("--steps-per-call", type=_positive_int, default=None,
                        help="steps per compiled call (default: 1 on CPU, one epoch on GPU/TPU); speed only")
    parser.add_argument("--compute-dtype", choices=COMPUTE_DTYPES, default=None,
                        help="activations and matrix products (default float32; bfloat16 = mixed precision with "
                             "float32 parameters and optimizer states)")
    _add_devices_arg(parser)
    parser.add_argument("--checkpoint-every", type=_positive_int, default=None,
                        help="also save a checkpoint every N steps (default: at epoch ends, see --checkpoint-seconds)")
    parser.add_argument("--noise-dim", type=_positive_int, default=None, help="generator input size (default 100)")
    parser.add_argument("--g-features", type=_widths(3), default=None,
                        help="generator widths DENSE,CONV,CONV (default 256,128,64)")
    parser.add_argument("--d-features", type=_widths(2), default=None,
                        help="discriminator conv widths (default 64,128)")
    parser.add_argument("--data-source", choices=DATA_SOURCES, default=None,
                        help="data route: prepared TFDS, the offline cache, or auto (TFDS if prepared)")
    parser.add_argument("--loss", choices=tuple(GAN_LOSSES), default=None,
                        help="the adversarial objective: non_saturating (BCE, the tutorial's; default), hinge, or "
                             "wgan_gp (Wasserstein critic with a gradient penalty)")
    parser.add_argument("--critic-steps", type=_positive_int, default=None,
                        help="discriminator updates per generator update, each on its own batch, so an epoch has "
                             "N // (critic steps x batch size) steps (default 1; the WGAN-GP paper used 5)")
    parser.add_argument("--gp-weight", type=_bounded(float, lambda v: v >= 0, "a number >= 0"), default=None,
                        help="weight of the gradient penalty in the critic's loss, --loss wgan_gp only (default 10)")
    _add_output_args(parser)


def _given_fields(kind, args, skip: tuple[str, ...] = ()) -> dict:
    """The fields of config class `kind` that have an option here, with its value (None: the recipe's)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(kind) if hasattr(args, f.name) and f.name not in skip}


_CLASSIFIER_CHOICES = ("model", "labels", "data_seeds")  # passed to the recipe explicitly


GRAYSCALE_28 = names_with_shape((28, 28, 1))  # what the SGAN and its baseline can train on


def _add_dataset_arg(parser: argparse.ArgumentParser, names) -> None:
    parser.add_argument("--dataset", choices=tuple(names), default=None,
                        help=f"what to train on (default mnist): {', '.join(names)} (gan_jax.datasets)")


def _gan_config(kind, args):
    return kind.recipe(args.recipe, **_given_fields(kind, args))


def _classifier_config(kind, args):
    seeds = args.data_seeds or (args.data_seed or 0,)
    return kind.recipe(args.model, labels=args.labels, data_seeds=seeds,
                       **_given_fields(kind, args, skip=_CLASSIFIER_CHOICES))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="GANs on small images (MNIST by default) in JAX/Flax: train, resume, sample, evaluate, sweep.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train a model (resumes if WORKDIR has checkpoints)")
    tasks = train.add_subparsers(dest="task", required=True, parser_class=_Parser)
    for name, text in (("gan", "the DCGAN of the TensorFlow MNIST tutorial"),
                       ("cgan", "the conditional DCGAN: ask it for a digit (`sample --digit 7`)")):
        sub = tasks.add_parser(name, help=text, description=f"Train {text} (MNIST, or --dataset). Running the same command "
                               "again with the same --workdir resumes from its latest checkpoint.")
        _add_gan_args(sub)
        _add_dataset_arg(sub, DATASETS)
        sub.set_defaults(make_config=_gan_config, scores="scores the samples")

    for name, sgan, text in (
            ("sgan", True, "the semi-supervised GAN: a classifier from few labels, all unlabeled images and fakes"),
            ("supervised", False, "the SGAN's classifier trained on the labeled images alone (the baseline)")):
        sub = tasks.add_parser(name, help=text, description=f"Train {text}. Running the same command again "
                               "with the same --workdir resumes from its latest checkpoint.")
        _add_classifier_args(sub, sgan=sgan)
        _add_dataset_arg(sub, GRAYSCALE_28)
        sub.set_defaults(make_config=_classifier_config, scores="prints the test accuracy")

    evaluate = commands.add_parser(
        "evaluate", help="score a workdir as one JSON line: FD/IS of a GAN's samples, or a classifier's accuracy",
        description="Print one JSON line about the latest checkpoint's final parameters (the EMA when kept). "
                    "gan/cgan: Fréchet distance of --samples generated images to the 10,000 test images in the "
                    "feature network's features, beside the floor FD(train, test), the Inception Score, the "
                    "confident share and (cgan) the digit accuracy. sgan/supervised: test accuracy.")
    evaluate.add_argument("--workdir", required=True, type=pathlib.Path, help="a trained workdir")
    evaluate.add_argument("--samples", type=_bounded(int, lambda v: v >= 2, "an integer >= 2"), default=10_000,
                          help="generated images to score (gan/cgan; default 10000)")

    features = commands.add_parser(
        "features", help="load (or --retrain) the Fréchet-distance feature network; print its checksum and accuracy",
        description="Load the feature network that defines the Fréchet distance (MNIST's is shipped in the package, "
                    "the same on every machine) and print one JSON line: path, SHA-256, test accuracy, FD floor. "
                    "--retrain trains one on this machine instead (cached) and reports it.")
    features.add_argument("--data-source", choices=DATA_SOURCES, default="auto",
                          help="data route for its training (default auto)")
    features.add_argument("--retrain", action="store_true",
                          help="use a network trained on this machine instead of the packaged one: trained now, or "
                               "loaded from this machine's cache (training is deterministic on one machine, so a "
                               "second training here would give the same file); evaluations keep using the packaged one")
    features.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_dataset_arg(features, DATASETS)

    sweep = commands.add_parser(
        "sweep", help="SGAN vs supervised over label counts and data seeds: CSV, table, bar chart, samples",
        description="Train the SGAN and the supervised baseline for every label count, all data seeds of a "
                    "label count in one vmapped program; write results.csv, results.md, results.json, "
                    "accuracy_vs_labels.png and samples_over_training.png into OUT. Rerunning resumes.")
    sweep.add_argument("--labels", required=True, type=int_list, help="label counts, e.g. 20,50,100,1000")
    sweep.add_argument("--data-seeds", type=int_list, default=(0, 1, 2, 3, 4), help="default 0,1,2,3,4")
    sweep.add_argument("--out", required=True, type=pathlib.Path, help="output folder (runs/ and the reports)")
    sweep.add_argument("--methods", type=_method_list, default=("sgan", "supervised"),
                       help="comma-separated subset of sgan,supervised (default both)")
    _add_classifier_args(sweep, sgan=True, sweep=True)
    _add_dataset_arg(sweep, GRAYSCALE_28)

    sample = commands.add_parser("sample", help="write a grid of generated digits from a workdir's latest checkpoint",
                                 description="Write a PNG grid of N generated digits from WORKDIR's latest checkpoint.")
    sample.add_argument("--workdir", required=True, type=pathlib.Path,
                        help="a workdir of `gan-jax train gan`, `train cgan` or `train sgan` (first data seed's generator)")
    sample.add_argument("--num", type=_positive_int, default=64, help="how many digits (default 64)")
    sample.add_argument("--out", required=True, type=pathlib.Path, help="PNG file to write")
    sample.add_argument("--seed", type=_non_negative_int, default=0, help="noise seed (default 0)")
    sample.add_argument("--digit", type=_bounded(int, lambda v: 0 <= v <= 9, "a digit 0..9"), default=None,
                        help="cgan only: draw only this digit (default: a cgan cycles 0..9 in columns)")

    bench = commands.add_parser(
        "bench", help="time the training steps (DCGAN, SGAN MLP): one JSON line per configuration",
        description="Time the DCGAN step (batch 64/256/1024) and the SGAN MLP recipe's step (batch 100, 1 and 10 "
                    "data seeds vmapped) on synthetic data already on the device: steps/s, images/s, compile "
                    "time, GFLOP/s beside matmul peaks measured in the same run, peak memory, device, versions.")
    from gan_jax.bench import add_arguments

    add_arguments(bench)

    info = commands.add_parser("info", help="print a workdir's task, step, config and parameter fingerprint as JSON",
                               description="Print one JSON line: the task, the latest intact step, the stored "
                                           "config and params_sha256 (a SHA-256 of every parameter and "
                                           "normalization statistic), to compare runs exactly.")
    info.add_argument("--workdir", required=True, type=pathlib.Path, help="a trained workdir")

    commands.add_parser("devices", help="print the devices JAX runs on as JSON (and whether a GPU/TPU goes unused)",
                        description="Print one JSON line: JAX's backend, its devices, the jax/jaxlib versions, "
                                    "accelerators this machine's drivers show, and a warning when one of them "
                                    "is present but JAX runs on CPU (with the install command that fixes it).")
    return parser


def _method_list(text: str) -> tuple[str, ...]:
    methods = tuple(text.split(","))
    if not methods or any(m not in ("sgan", "supervised") for m in methods) or len(set(methods)) != len(methods):
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of sgan,supervised, got {text!r}")
    return methods


def _train(args) -> None:
    from gan_jax.tasks import task_class

    config = args.make_config(task_class(args.task).config_type, args)
    _run_training(config, args)
    print(f"trained; outputs in {args.workdir}; `{PROG} evaluate --workdir {args.workdir}` {args.scores}")


def _run_training(config, args) -> None:
    from gan_jax.loop import train

    train(config, args.workdir, progress=not args.no_progress, devices=args.devices,
          keep_checkpoints=args.keep_checkpoints, tensorboard=not args.no_tensorboard,
          checkpoint_seconds=args.checkpoint_seconds)


def _sample(args) -> None:
    from gan_jax.api import load_run, sample_images
    from gan_jax.errors import ConfigError
    from gan_jax.plots import save_grid

    if args.out.suffix.lower() != ".png":
        raise ConfigError(f"--out must name a .png file, got {args.out}")
    task, state = load_run(args.workdir)
    if not args.out.parent.is_dir():
        raise ConfigError(f"--out's folder {args.out.parent} does not exist; create it first "
                          f"(mkdir -p {args.out.parent}) or write into an existing folder")
    images = sample_images(task, state, args.num, seed=args.seed, digit=args.digit)
    save_grid(args.out, images, cols=10 if task.conditional and args.digit is None else None)
    what = "samples" if args.digit is None else f"samples of digit {args.digit}"
    print(f"wrote {args.num} {what} from step {int(state.step)} to {args.out}")


def _evaluate(args) -> None:
    import json

    from gan_jax.api import evaluate_run

    print(json.dumps(evaluate_run(args.workdir, num_samples=args.samples)))


def _features(args) -> None:
    import json

    from gan_jax.api import train_feature_network
    from gan_jax.features import feature_net_config, load_feature_network

    config = dataclasses.replace(feature_net_config(args.dataset or "mnist"), data_source=args.data_source)
    network = (train_feature_network(config, progress=not args.no_progress) if args.retrain
               else load_feature_network(config))
    print(json.dumps({"path": str(network.path), "sha256": network.sha256, "packaged": network.packaged,
                      "test_accuracy": network.test_accuracy, "fd_floor": network.fd_floor,
                      "feature_dim": int(network.test_stats[0].shape[0]), "config": network.config.to_dict()}))


def _sweep(args) -> None:
    from gan_jax.sweep import run_sweep

    from gan_jax.config import SGANConfig

    overrides = _given_fields(SGANConfig, args, skip=_CLASSIFIER_CHOICES)
    run_sweep(args.labels, args.data_seeds, args.out, model=args.model, methods=args.methods,
              progress=not args.no_progress, **overrides)
    print(f"sweep done; see {args.out / 'results.md'}")


def _bench(args) -> None:
    from gan_jax.bench import main as bench_main

    bench_main(args)


def _devices(args) -> None:
    import json

    from gan_jax.devices import report

    print(json.dumps(report()))


def _info(args) -> None:
    import json

    from gan_jax.api import run_info

    print(json.dumps(run_info(args.workdir)))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    install_default_handler()
    from gan_jax.steps import enable_compilation_cache

    enable_compilation_cache()
    try:
        from gan_jax.parallel import initialize_distributed

        initialize_distributed()
        {"train": _train, "sample": _sample, "info": _info, "evaluate": _evaluate, "sweep": _sweep,
         "features": _features, "bench": _bench,
         "devices": _devices}[args.command](args)
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
