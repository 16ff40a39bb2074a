"""`gan-jax`: argparse → config → task → loop.

Exit codes: 0 done; 2 a user mistake (one line on stderr, nothing changed); 3 training diverged
(NaN/Inf; the last good checkpoint is kept); 130/143 stopped by Ctrl-C/SIGTERM after saving a
checkpoint (run the same command to resume).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import pathlib
import re
import sys
import types
import typing

from gan_jax.config import DATA_SOURCES, MODELS, SGANConfig, field_docs
from gan_jax.datasets import DATASETS
from gan_jax.errors import TrainingStopped, UserError
from gan_jax.logs import install_default_handler
from gan_jax.tasks import TASKS

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


def int_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated non-negative integers, e.g. `20,50,100`."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated non-negative integers, got {text!r}")
    return values


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


_NUMBERS = {int: _bounded(int, lambda v: True, "an integer"), float: _bounded(float, lambda v: True, "a number")}
# Tuple fields that also take one value under a singular name, exclusive with the list form.
_SINGULAR = {"data_seeds": ("--data-seed", "a non-negative integer", lambda v: v[0] >= 0)}
_OPTION_ALIASES = {"eval_every_epoch": ("--every-epoch",)}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _default_text(kind, field: dataclasses.Field) -> str:
    """' (default X)', or each recipe's value where recipes differ (' (default: mlp 300, conv 5)')."""
    if field.name == kind.RECIPE_FIELD:
        return f" (default {next(iter(kind.RECIPES))})"
    values = {name: recipe.get(field.name, field.default) for name, recipe in kind.RECIPES.items()}
    if field.name in kind.REQUIRED or None in values.values():
        return ""
    if len(set(map(_shown, values.values()))) == 1:
        return f" (default {_shown(next(iter(values.values())))})"
    return " (default: " + ", ".join(f"{name} {_shown(v)}" for name, v in values.items()) + ")"


def _as_options(text: str, kind) -> str:
    """`text` with each backquoted field name of `kind` written as its option (`batch_size` → --batch-size)."""
    for field in dataclasses.fields(kind):
        text = text.replace(f"`{field.name}`", _option(field.name))
    return text


def _field_argument(kind, field: dataclasses.Field, hint, doc: str) -> dict:
    """argparse keywords for a config field: its type from the annotation, choices, help from its doc.

    Values are converted here and checked by the config, whose errors `_train` words as options.
    """
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # `int | None`: None is "not given"
        hint = next(t for t in typing.get_args(hint) if t is not type(None))
    text = _as_options(doc.rstrip(".") + _default_text(kind, field) + ".", kind).replace("%", "%%")
    if hint is bool:
        return dict(action=argparse.BooleanOptionalAction, default=None, help=text)
    if typing.get_origin(hint) is tuple and typing.get_args(hint) == (int, ...):
        return dict(type=int_list, default=None, metavar="N,N,...", help=text)
    if hint is str:
        choices = tuple(kind.RECIPES) if field.name == kind.RECIPE_FIELD else kind.CHOICES.get(field.name)
        return dict(choices=choices, default=None, help=text)
    if hint in _NUMBERS:
        return dict(type=_NUMBERS[hint], default=None, metavar="N" if hint is int else "X", help=text)
    raise TypeError(f"{kind.__name__}.{field.name}: the CLI has no option type for {hint}; use int, float, str, "
                    "bool, tuple[int, ...] or one of those | None")


def add_config_options(parser: argparse.ArgumentParser, kind, skip: tuple[str, ...] = ()) -> None:
    """One option per field of config class `kind` (`--batch-size` for `batch_size`), typed from its
    annotation, with its choices, its doc (`config.field_docs`) as help and the recipes' defaults.

    None (an option not given) means the recipe's value; `kind.REQUIRED` fields must be given. A
    config without a `RECIPE_FIELD` and with several recipes also gets `--recipe`.
    """
    if kind.RECIPE_FIELD is None and len(kind.RECIPES) > 1:
        described = [name + (" (" + " ".join(f"{_option(k)} {_shown(v)}" for k, v in values.items()) + ")"
                             if values else " (the defaults below)") for name, values in kind.RECIPES.items()]
        parser.add_argument("--recipe", choices=tuple(kind.RECIPES), default=None,
                            help=f"a set of defaults: {'; '.join(described)} (default {next(iter(kind.RECIPES))}); "
                                 "options given override it")
    docs, hints = field_docs(kind), typing.get_type_hints(kind)
    for field in dataclasses.fields(kind):
        if field.name in skip:
            continue
        if field.name not in docs:
            raise TypeError(f"{kind.__name__}.{field.name} has no line in the class docstring's Attributes section, "
                            "which the CLI uses as its help; add one")
        target = parser
        if field.name in _SINGULAR:
            target = parser.add_mutually_exclusive_group()
            singular, what, accept = _SINGULAR[field.name]
            target.add_argument(singular, dest=field.name, default=None, metavar="N",
                                type=_bounded(lambda t: (int(t),), accept, what), help=f"a single value, the same as {_option(field.name)} N")
        target.add_argument(_option(field.name), *_OPTION_ALIASES.get(field.name, ()),
                            required=field.name in kind.REQUIRED,
                            **_field_argument(kind, field, hints[field.name], docs[field.name]))


def given_fields(kind, args, skip: tuple[str, ...] = ()) -> dict:
    """The fields of config class `kind` that have an option in `args`, with its value (None: not given)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(kind) if hasattr(args, f.name) and f.name not in skip}


def make_config(kind, args):
    """The config of a parsed `train` command line: the chosen recipe with the options given."""
    given = given_fields(kind, args)
    recipe = given.get(kind.RECIPE_FIELD) if kind.RECIPE_FIELD else getattr(args, "recipe", None)
    return kind.recipe(recipe, **given)


def _summary(kind) -> tuple[str, str]:
    """(first sentence, first paragraph) of a config class's docstring, for a command's help."""
    paragraph = " ".join(inspect.cleandoc(kind.__doc__).split("\n\n")[0].split())
    return paragraph.split(". ")[0].rstrip("."), paragraph


_SWEEP_OWN = ("labels", "data_seeds")  # the sweep's own options: lists of values


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="GANs on small images (MNIST by default) in JAX/Flax: train, resume, sample, evaluate, sweep.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train a model (resumes if WORKDIR has checkpoints)")
    tasks = train.add_subparsers(dest="task", required=True, parser_class=_Parser)
    for name, task in TASKS.items():
        kind = task.config_type
        summary, paragraph = _summary(kind)
        sub = tasks.add_parser(name, help=summary[0].lower() + summary[1:], description=(
            f"{paragraph} Running the same command again with the same --workdir resumes from its latest "
            f"checkpoint; `{PROG} evaluate --workdir WORKDIR` scores it."))
        sub.add_argument("--workdir", required=True, type=pathlib.Path,
                         help="folder for checkpoints/, metrics.jsonl, the sample grids and figures")
        add_config_options(sub, kind)
        _add_devices_arg(sub)
        _add_output_args(sub)

    evaluate = commands.add_parser(
        "evaluate", help="score a workdir as one JSON line: FD/IS of a GAN's samples, or a classifier's accuracy",
        description="Print one JSON line about the latest checkpoint's final parameters (the EMA when kept). "
                    "gan/cgan: Fréchet distance of --samples generated images to the test images in the "
                    "dataset's feature network's features, beside the floor FD(train, test), the Inception Score, "
                    "the confident share and (cgan) the digit accuracy. sgan/supervised/features: test accuracy.")
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
    features.add_argument("--dataset", choices=tuple(DATASETS), default="mnist",
                          help="the dataset whose feature network to load or train (default mnist)")

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
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_config_options(sweep, SGANConfig, skip=_SWEEP_OWN)

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

    from gan_jax.errors import ConfigError

    kind = task_class(args.task).config_type
    try:
        config = make_config(kind, args)
    except ConfigError as err:
        raise ConfigError(_worded_as_options(str(err), kind)) from None
    _run_training(config, args)
    print(f"trained; outputs in {args.workdir}; `{PROG} evaluate --workdir {args.workdir}` scores it")


def _worded_as_options(message: str, kind) -> str:
    """A config error as the command line says it: its leading field name, and every field name with
    an underscore (never prose), written as the option (`learning_rate must ...` → `--learning-rate must ...`)."""
    words = message.split(" ", 1)
    names = {f.name for f in dataclasses.fields(kind)}
    if words[0].rstrip(":") in names:
        message = _option(words[0].rstrip(":")) + words[0][len(words[0].rstrip(":")):] + (
            " " + words[1] if len(words) > 1 else "")
    for name in sorted((n for n in names if "_" in n), key=len, reverse=True):
        message = re.sub(rf"(?<![-\w]){name}\b", _option(name), message)
    return message


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

    config = dataclasses.replace(feature_net_config(args.dataset), data_source=args.data_source)
    network = (train_feature_network(config, progress=not args.no_progress) if args.retrain
               else load_feature_network(config))
    print(json.dumps({"path": str(network.path), "sha256": network.sha256, "packaged": network.packaged,
                      "test_accuracy": network.test_accuracy, "fd_floor": network.fd_floor,
                      "feature_dim": int(network.test_stats[0].shape[0]), "config": network.config.to_dict()}))


def _sweep(args) -> None:
    from gan_jax.errors import ConfigError
    from gan_jax.sweep import run_sweep, sweep_configs

    overrides = given_fields(SGANConfig, args, skip=_SWEEP_OWN + ("model",))
    chosen = dict(model=args.model or MODELS[0], methods=args.methods, **overrides)
    try:
        sweep_configs(args.labels, args.data_seeds, **chosen)
    except ConfigError as err:
        raise ConfigError(_worded_as_options(str(err), SGANConfig)) from None
    run_sweep(args.labels, args.data_seeds, args.out, progress=not args.no_progress, **chosen)
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
