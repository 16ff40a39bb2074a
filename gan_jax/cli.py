"""`gan-jax`: argparse → config → task → loop.

Exit codes: 0 done; 2 a user mistake (one line on stderr, nothing changed); 3 training diverged
(NaN/Inf; the last good checkpoint is kept); 4 a multi-host run lost a peer process (or crashed;
`gan_jax.multihost`: one line names the checkpoint and the command to resume); 130/143 stopped by
Ctrl-C/SIGTERM after saving a checkpoint (run the same command to resume).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import pathlib
import sys
from typing import Any

from gan_jax import multihost
from gan_jax.cli_options import (
    add_bench_options,
    add_config_options,
    bounded,
    docstring_summary,
    given_fields,
    int_list,
    make_config,
    worded_as_options,
)
from gan_jax.config import CONFIGS, DATA_SOURCES, MODELS, SGANConfig
from gan_jax.data import DATASETS
from gan_jax.errors import ConfigError, TrainingStopped, UserError

PROG = "gan-jax"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit code 2, and which takes no abbreviations
    (`--epoch 1` is an error, not `--epochs 1`)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


CHECKPOINT_OPTION: dict[str, Any] = dict(
    choices=("latest", "best"),
    default="latest",
    help="sgan/supervised: the latest checkpoint, or the classifier with the best validation "
    "accuracy (kept when the run had a validation split: --val-fraction) (default latest)",
)
_positive_int = bounded(int, lambda v: v > 0, "a positive integer")
_non_negative_int = bounded(int, lambda v: v >= 0, "a non-negative integer")


def _add_output_args(parser: argparse.ArgumentParser) -> None:
    """Options of every `train` command that change what is written or shown, never results."""
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar (epoch lines stay)"
    )
    parser.add_argument(
        "--keep-checkpoints",
        type=_positive_int,
        default=3,
        metavar="N",
        help="newest checkpoints kept in DIR/checkpoints (default 3; each holds both models "
        "and their Adam states)",
    )
    parser.add_argument(
        "--no-tensorboard",
        action="store_true",
        help="do not write TensorBoard event files into DIR",
    )
    parser.add_argument(
        "--checkpoint-seconds",
        type=bounded(float, lambda v: v >= 0, "a number >= 0"),
        default=None,
        metavar="X",
        help=(
            "save at an epoch's end only once X seconds have passed since the last save; 0 = "
            "every epoch (default: automatic, at most 2%% of the time spent saving; the run's "
            "end, Ctrl-C/SIGTERM and --checkpoint-every always save)"
        ),
    )


def _add_devices_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--devices",
        type=_positive_int,
        default=None,
        metavar="N",
        help="data-parallel over the first N devices (default: all; batch sharded, states "
        "replicated); speed only",
    )


_SWEEP_OWN = ("labels", "data_seeds")  # the sweep's own options: lists of values


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description=(
            "GANs on small images (MNIST by default) in JAX/Flax: train, resume, sample, "
            "evaluate, sweep."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add_command in COMMANDS:
        add_command(commands)
    return parser


# Options of the classifier commands (`predict`, `export`).
_CLASSIFIER_WORKDIR = dict(
    required=True, type=pathlib.Path, metavar="DIR", help="a trained sgan or supervised workdir"
)
_MEMBER = dict(
    type=_non_negative_int,
    default=None,
    metavar="N",
    help="one data seed's classifier (0-based, in --data-seeds order; default: the mean of "
    "all members' probabilities)",
)


def _train_command(commands) -> None:
    """`train TASK`: one subcommand per registered task, its config fields as options."""
    train = commands.add_parser("train", help="train a model (resumes if its DIR has checkpoints)")
    tasks = train.add_subparsers(dest="task", required=True, parser_class=_Parser)
    for name, kind in CONFIGS.items():
        summary, paragraph = docstring_summary(kind)
        sub = tasks.add_parser(
            name,
            help=summary[0].lower() + summary[1:],
            description=(
                f"{paragraph} Running the same command again with the same --workdir resumes from "
                f"its latest checkpoint; `{PROG} evaluate --workdir DIR` scores it."
            ),
        )
        sub.add_argument(
            "--workdir",
            required=True,
            type=pathlib.Path,
            metavar="DIR",
            help="folder for checkpoints/, metrics.jsonl, the sample grids and figures",
        )
        add_config_options(sub, kind)
        _add_devices_arg(sub)
        _add_output_args(sub)
    train.set_defaults(run=_train)


def _evaluate_command(commands) -> None:
    """`evaluate`: a workdir scored as one JSON line."""
    evaluate = commands.add_parser(
        "evaluate",
        help=(
            "score a workdir as one JSON line: FD/IS of a GAN's samples, or a classifier's accuracy"
        ),
        description=(
            "Print one JSON line about the latest checkpoint's final parameters (the EMA when "
            "kept). gan/cgan: Fréchet distance of --samples generated images to the test images "
            "in the dataset's feature network's features, beside the floor FD(train, test), the "
            "Inception Score, the confident share and (cgan) the digit accuracy. "
            "sgan/supervised/features: test accuracy."
        ),
    )
    evaluate.add_argument(
        "--workdir", required=True, type=pathlib.Path, metavar="DIR", help="a trained workdir"
    )
    evaluate.add_argument(
        "--samples",
        type=bounded(int, lambda v: v >= 2, "an integer >= 2"),
        default=10_000,
        metavar="N",
        help="generated images to score (gan/cgan; default 10000)",
    )
    evaluate.add_argument("--checkpoint", **CHECKPOINT_OPTION)
    evaluate.set_defaults(run=_evaluate)


def _features_command(commands) -> None:
    """`features`: the Fréchet-distance feature network, loaded or retrained."""
    features = commands.add_parser(
        "features",
        help=(
            "load (or --retrain) the Fréchet-distance feature network; print its checksum and "
            "accuracy"
        ),
        description=(
            "Load the feature network that defines the Fréchet distance (MNIST's and "
            "Fashion-MNIST's are shipped in the package, the same on every machine) and print one "
            "JSON line: path, SHA-256, test accuracy, FD floor. --retrain trains one on this "
            "machine instead (cached) and reports it."
        ),
    )
    features.add_argument(
        "--data-source",
        choices=DATA_SOURCES,
        default="auto",
        help="data route for its training (default auto)",
    )
    features.add_argument(
        "--retrain",
        action="store_true",
        help="use a network trained on this machine instead of the packaged one: trained now, or "
        "loaded from this machine's cache (training is deterministic on one machine, so a "
        "second training here would give the same file); evaluations keep using the packaged one",
    )
    features.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    features.add_argument(
        "--dataset",
        default="mnist",
        metavar="DATASET",
        help="the dataset whose feature network to load or train: a name of the table "
        f"({', '.join(DATASETS)}) or a labeled folder:PATH, npz:PATH, tfds:NAME (default mnist)",
    )
    features.add_argument(
        "--image-size", type=int, metavar="N", help="as the run's --image-size (not set: as stored)"
    )
    features.add_argument(
        "--channels", type=int, metavar="N", help="as the run's --channels (not set: as stored)"
    )
    features.set_defaults(run=_features)


def _sweep_command(commands) -> None:
    """`sweep`: SGAN and supervised over label counts and data seeds."""
    sweep = commands.add_parser(
        "sweep",
        help="SGAN vs supervised over label counts and data seeds: CSV, table, bar chart, samples",
        description=(
            "Train the SGAN and the supervised baseline for every label count, all data seeds of "
            "a label count in one vmapped program; write results.csv, results.md, results.json, "
            "accuracy_vs_labels.png and samples_over_training.png into OUT. Rerunning resumes."
        ),
    )
    sweep.add_argument(
        "--labels",
        required=True,
        type=int_list,
        metavar="N,N,...",
        help="label counts, e.g. 20,50,100,1000",
    )
    sweep.add_argument(
        "--data-seeds",
        type=int_list,
        default=(0, 1, 2, 3, 4),
        metavar="N,N,...",
        help="default 0,1,2,3,4",
    )
    sweep.add_argument(
        "--out",
        required=True,
        type=pathlib.Path,
        metavar="DIR",
        help="output folder (runs/ and the reports)",
    )
    sweep.add_argument(
        "--methods",
        type=_method_list,
        default=("sgan", "supervised"),
        metavar="NAME,...",
        help="comma-separated subset of sgan,supervised (default both)",
    )
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_config_options(sweep, SGANConfig, skip=_SWEEP_OWN)
    sweep.set_defaults(run=_sweep)


def _sample_command(commands) -> None:
    """`sample`: a grid of generated images from a workdir."""
    sample = commands.add_parser(
        "sample",
        help="write a grid of generated digits from a workdir's latest checkpoint",
        description="Write a PNG grid of N generated digits from DIR's latest checkpoint "
        "(into DIR/samples/ unless --out names a file) and print its path.",
    )
    sample.add_argument(
        "--workdir",
        required=True,
        type=pathlib.Path,
        metavar="DIR",
        help=(
            "a workdir of `gan-jax train gan`, `train cgan` or `train sgan` (first data seed's "
            "generator)"
        ),
    )
    sample.add_argument(
        "--num", type=_positive_int, default=64, metavar="N", help="how many digits (default 64)"
    )
    sample.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        metavar="PATH",
        help="PNG file to write (default: DIR/samples/sample_<seed>.png, with --digit "
        "sample_<seed>_digit_<digit>.png)",
    )
    sample.add_argument(
        "--seed", type=_non_negative_int, default=0, metavar="N", help="noise seed (default 0)"
    )
    sample.add_argument(
        "--class",
        dest="class_name",
        default=None,
        metavar="NAME",
        help="cgan only: draw only this class, by its name (a dataset's class names, e.g. a "
        "class folder's) or its index 0..classes-1 (default: a cgan cycles through the classes in "
        "columns)",
    )
    sample.add_argument(
        "--digit",
        type=_non_negative_int,
        default=None,
        metavar="N",
        help="the same as --class N, for digits",
    )
    sample.set_defaults(run=_sample)


def _bench_command(commands) -> None:
    """`bench`: training-step timings."""
    bench = commands.add_parser(
        "bench",
        help="time the training steps (DCGAN, SGAN MLP): one JSON line per configuration",
        description=(
            "Time the DCGAN step (batch 64/256/1024) and the SGAN MLP recipe's step (batch 100, 1 "
            "and 10 data seeds vmapped) on synthetic data already on the device: steps/s, "
            "images/s, compile time, GFLOP/s beside matmul peaks measured in the same run, peak "
            "memory, device, versions."
        ),
    )
    add_bench_options(bench)
    bench.set_defaults(run=_bench)


def _info_command(commands) -> None:
    """`info`: a workdir's task, step, config and fingerprint."""
    info = commands.add_parser(
        "info",
        help="print a workdir's task, step, config and parameter fingerprint as JSON",
        description="Print one JSON line: the task, the latest intact step, the stored "
        "config and params_sha256 (a SHA-256 of every parameter and "
        "normalization statistic), to compare runs exactly.",
    )
    info.add_argument(
        "--workdir", required=True, type=pathlib.Path, metavar="DIR", help="a trained workdir"
    )
    info.set_defaults(run=_info)


def _launch_command(commands) -> None:
    """`launch`: N local processes of one multi-host run (run by `main`, before any set-up)."""
    launch = commands.add_parser(
        "launch",
        help="start N local processes of one multi-host run (testing): launch --processes N -- "
        "train ...",
        description="Run `gan-jax COMMAND` as N processes on this machine joined by "
        "jax.distributed (127.0.0.1, a free port), as N hosts would be. Library output goes to "
        "WORKDIR/logs/process_<i>.log, each process's own lines are prefixed [i]. If one "
        "process fails the others stop within $GAN_JAX_PEER_TIMEOUT seconds (default 30), "
        "each with one line naming the last checkpoint and the command to resume.",
    )
    launch.add_argument(
        "--processes", type=_positive_int, required=True, metavar="N", help="how many processes"
    )
    launch.add_argument(
        "--port",
        type=_positive_int,
        default=None,
        metavar="N",
        help="coordinator port (default: a free one)",
    )
    launch.add_argument(
        "argv", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="e.g. -- train gan ..."
    )


def _predict_command(commands) -> None:
    """`predict`: a trained classifier's CSV row per image."""
    predict = commands.add_parser(
        "predict",
        help="classify images with a trained classifier: a CSV row per image",
        description="Classify images with DIR's classifier (--checkpoint) and write CSV rows "
        "`id, class, confidence, p_<class>...` (id: the file path, or the index in the split). "
        "Images are shaped as the run trained (size, channels).",
    )
    predict.add_argument("--workdir", **_CLASSIFIER_WORKDIR)
    predict.add_argument(
        "--dataset",
        required=True,
        metavar="DATASET",
        help="folder:PATH (every PNG/JPEG under it), an image file, or a dataset: mnist, "
        "npz:PATH, ... (its --split)",
    )
    predict.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default=None,
        help="a dataset's split (default: test where it has one, else all its images); the run's "
        "own dataset is split as in training",
    )
    predict.add_argument("--member", **_MEMBER)
    predict.add_argument("--checkpoint", **CHECKPOINT_OPTION)
    predict.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        metavar="PATH",
        help="CSV file to write (default: standard output)",
    )
    predict.set_defaults(run=_predict)


def _export_command(commands) -> None:
    """`export`: a trained classifier as a jax.export file."""
    export = commands.add_parser(
        "export",
        help="write a trained classifier as a jax.export file that runs without gan_jax",
        description="Serialize DIR's classifier with jax.export: uint8 images [batch, H, W, C] "
        "of any batch size in, float32 class probabilities out, for CPU and CUDA. PATH.json "
        "beside it holds the class names and the input shape; `jax.export.deserialize(open(PATH, "
        "'rb').read()).call(images)` runs it.",
    )
    export.add_argument("--workdir", **_CLASSIFIER_WORKDIR)
    export.add_argument(
        "--out", required=True, type=pathlib.Path, metavar="PATH", help="the file to write"
    )
    export.add_argument("--member", **_MEMBER)
    export.add_argument("--checkpoint", **CHECKPOINT_OPTION)
    export.set_defaults(run=_export)


def _devices_command(commands) -> None:
    """`devices`: what JAX runs on."""
    devices = commands.add_parser(
        "devices",
        help="print the devices JAX runs on as JSON (and whether a GPU/TPU goes unused)",
        description="Print one JSON line: JAX's backend, its devices, the jax/jaxlib versions, "
        "accelerators this machine's drivers show, and a warning when one of them "
        "is present but JAX runs on CPU (with the install command that fixes it).",
    )
    devices.set_defaults(run=_devices)


def _onednn_command(commands) -> None:
    """`onednn build|status`: the optional oneDNN convolutions for CPU."""
    onednn = commands.add_parser(
        "onednn",
        help="build the oneDNN convolutions that make CPU training about 1.7x as fast",
        description="CPU runs convolve through oneDNN once its FFI library is built here "
        "(needs `apt-get install g++ libdnnl-dev`); GAN_JAX_CONV=xla|onednn|auto chooses.",
    )
    actions = onednn.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="compile the library into ~/.cache/gan_jax/onednn (or $GAN_JAX_ONEDNN_DIR)",
        description="Compile gan_jax/onednn/conv.cc against the installed oneDNN and jaxlib's "
        "FFI headers; prints the library's path.",
    )
    build.add_argument("--force", action="store_true", help="rebuild even if it is there")
    actions.add_parser("status", help="print the convolution path and the library as JSON")
    onednn.set_defaults(run=_onednn)


def _onednn(args) -> None:
    import json

    from gan_jax import onednn

    if args.action == "build":
        print(onednn.build_library(force=args.force))
    else:
        print(json.dumps(onednn.status()))


def _predict(args) -> None:
    from gan_jax.api import predict
    from gan_jax.classify import write_predictions

    result = predict(args.workdir, args.dataset, args.member, args.split, args.checkpoint)
    try:
        write_predictions(result["class_names"], result["ids"], result["probabilities"], args.out)
    except OSError as err:
        raise ConfigError(
            f"cannot write {args.out} ({err.strerror}); pass --out FILE.csv in a writable folder"
        ) from None
    if args.out:
        print(f"wrote {len(result['ids'])} predictions to {args.out}", file=sys.stderr)


def _export(args) -> None:
    from gan_jax.api import export_classifier

    try:
        info = export_classifier(args.workdir, args.out, args.member, args.checkpoint)
    except OSError as err:
        raise ConfigError(
            f"cannot write {args.out} ({err.strerror}); pass --out FILE in a writable folder"
        ) from None
    print(
        f"wrote {args.out} and {args.out}.json: {len(info['class_names'])} classes, images "
        f"{'×'.join(map(str, info['input_shape'][1:]))} uint8"
    )


def _method_list(text: str) -> tuple[str, ...]:
    methods = tuple(text.split(","))
    if (
        not methods
        or any(m not in ("sgan", "supervised") for m in methods)
        or len(set(methods)) != len(methods)
    ):
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of sgan,supervised, got {text!r}"
        )
    return methods


def _train_config(args):
    """The config `train TASK` asks for (pure: its errors come before JAX loads)."""
    kind = CONFIGS[args.task]
    try:
        return make_config(kind, args)
    except ConfigError as err:
        raise ConfigError(worded_as_options(str(err), kind)) from None


def _train(args) -> None:
    _run_training(args.config, args)
    from gan_jax.parallel import is_writer

    if is_writer():
        print(
            f"trained; outputs in {args.workdir}; `{PROG} evaluate --workdir {args.workdir}` "
            "scores it"
        )


def _run_training(config, args) -> None:
    from gan_jax.loop import train

    train(
        config,
        args.workdir,
        progress=not args.no_progress,
        devices=args.devices,
        keep_checkpoints=args.keep_checkpoints,
        tensorboard=not args.no_tensorboard,
        checkpoint_seconds=args.checkpoint_seconds,
    )


def _sample(args) -> None:
    from gan_jax.api import load_run, sample_images
    from gan_jax.errors import ConfigError
    from gan_jax.plots import save_grid

    out = args.out
    if out is not None and out.suffix.lower() != ".png":
        raise ConfigError(f"--out must name a .png file, got {out}")
    task, state = load_run(args.workdir)
    if args.class_name is not None:
        args.digit = _class_index(task, args.class_name)
    if args.digit is not None and args.digit >= task.num_classes:
        raise ConfigError(
            f"argument --digit: expected a digit 0..{task.num_classes - 1}, got {args.digit}"
        )
    if out is not None and not out.parent.is_dir():
        raise ConfigError(
            f"--out's folder {out.parent} does not exist; create it first "
            f"(mkdir -p {out.parent}) or write into an existing folder"
        )
    images = sample_images(task, state, args.num, seed=args.seed, digit=args.digit)
    columns = task.num_classes if task.conditional and args.digit is None else None
    try:
        if out is None:  # into the run's own folder, once the samples are drawn
            digit = "" if args.digit is None else f"_digit_{args.digit}"
            out = args.workdir / "samples" / f"sample_{args.seed}{digit}.png"
            out.parent.mkdir(exist_ok=True)
        save_grid(out, images, cols=columns)
    except OSError as err:  # a read-only or full workdir: the run itself is untouched
        raise ConfigError(
            f"cannot write {err.filename or out} ({err.strerror}); pass --out PATH.png in a "
            "writable folder"
        ) from err
    what = "samples" if args.digit is None else f"samples of class {args.class_name or args.digit}"
    print(f"wrote {args.num} {what} from step {int(state.step)} to {out}")


def _class_index(task, name: str) -> int:
    """The index of class `name`: one of the dataset's class names, or an index 0..classes-1."""
    from gan_jax.classify import class_names

    names = class_names(task)
    if name in names:
        return names.index(name)
    if name.isdigit() and int(name) < len(names):
        return int(name)
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    raise ConfigError(
        f"argument --class: this run's classes are {shown} (or their indices 0..{len(names) - 1}), "
        f"got {name!r}"
    )


def _evaluate(args) -> None:
    import json

    from gan_jax.api import evaluate_run

    report = evaluate_run(args.workdir, num_samples=args.samples, checkpoint=args.checkpoint)
    print(json.dumps(report))


def _features(args) -> None:
    import json

    from gan_jax.api import train_feature_network
    from gan_jax.features import feature_net_config, load_feature_network

    config = dataclasses.replace(
        feature_net_config(args.dataset, args.image_size, args.channels),
        data_source=args.data_source,
    )
    network = (
        train_feature_network(config, progress=not args.no_progress)
        if args.retrain
        else load_feature_network(config)
    )
    print(
        json.dumps(
            {
                "path": str(network.path),
                "sha256": network.sha256,
                "packaged": network.packaged,
                "test_accuracy": network.test_accuracy,
                "fd_floor": network.fd_floor,
                "feature_dim": int(network.test_stats[0].shape[0]),
                "config": network.config.to_dict(),
            }
        )
    )


def _sweep(args) -> None:
    from gan_jax.errors import ConfigError
    from gan_jax.sweep import run_sweep, sweep_configs

    overrides = given_fields(SGANConfig, args, skip=_SWEEP_OWN + ("model",))
    chosen = dict(model=args.model or MODELS[0], methods=args.methods, **overrides)
    try:
        sweep_configs(args.labels, args.data_seeds, **chosen)
    except ConfigError as err:
        raise ConfigError(worded_as_options(str(err), SGANConfig)) from None
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


# The subcommands, in the order `gan-jax --help` lists them: each adds its parser and sets the
# function that runs it (`run`).
COMMANDS = (
    _train_command,
    _evaluate_command,
    _features_command,
    _sweep_command,
    _sample_command,
    _bench_command,
    _info_command,
    _launch_command,
    _predict_command,
    _export_command,
    _devices_command,
    _onednn_command,
)


def _parse(argv: list[str]) -> argparse.Namespace:
    """`argv` parsed; an unknown option is reported by the (sub)command that was given, with the
    closest option it has."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        command = parser
        for name in (args.command, getattr(args, "task", None)):
            actions = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
            if name is None or not actions:
                break
            command = actions[0].choices[name]
        options = [o for a in command._actions for o in a.option_strings]
        close = difflib.get_close_matches(unknown[0].split("=")[0], options, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        command.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    folder = getattr(args, "workdir", None) or getattr(args, "out", None)
    try:
        if args.command == "train":  # a wrong value is an argument error: reported before JAX
            args.config = _train_config(args)
        if args.command == "launch":
            from gan_jax.launch import launch

            return launch(args.processes, args.argv, args.port)
        if multihost.requested() and folder and not multihost.enter_worker():
            return multihost.supervise(argv, folder)
    except UserError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    code = _run(args)
    if code and multihost.is_worker():
        multihost.exit_worker(code)
    return code


def _run(args) -> int:
    from gan_jax.process import setup_process  # JAX: only once the command line parsed

    setup_process()
    from gan_jax.steps import enable_compilation_cache

    enable_compilation_cache()
    try:
        from gan_jax.parallel import initialize_distributed

        initialize_distributed()
        args.run(args)
    except UserError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except TrainingStopped as err:  # every process stops at the same step: process 0 says so
        import jax

        if jax.process_index() == 0:
            print(f"{PROG}: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(
            f"{PROG}: interrupted at once; run the same command to resume from the latest "
            "checkpoint",
            file=sys.stderr,
        )
        return 130
    except Exception as err:
        if multihost.is_worker():  # the supervisor prints the line; the traceback goes to the log
            multihost.exit_worker(multihost.CRASHED, err)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
