"""A bad input gets one error line naming the problem and the fix, exit code 2, and changes nothing.

CLI_CASES is the table of command-line cases; API_CASES the Python entry points with the
documented exception type. Each CLI case runs against a snapshot of a trained workdir (`TRAINED`)
and of the folder the case may point at (`NEW`), and checks that no file was created, changed or
removed.
"""

import hashlib
import pathlib

import numpy as np
import pytest

from gan_jax import (
    CGANConfig,
    CGANTask,
    ConfigError,
    DataError,
    FeatureNetConfig,
    GANConfig,
    GANTask,
    SGANConfig,
    SupervisedConfig,
    load,
    sample_images,
)
from gan_jax.checkpoint import CheckpointStore
from gan_jax.cli import main
from gan_jax.data import check_images, labeled_subset
from gan_jax.metrics import feature_statistics
from scripts.kill_resume_check import TINY

# (case id, argv with TRAINED / NEW / FILE / OTHER placeholders, fragment of the one-line error)
CLI_CASES = [
    (
        "batch size zero",
        ["train", "gan", "--workdir", "NEW", "--batch-size", "0"],
        "--batch-size must be a positive integer, got 0; pass a value >= 1",
    ),
    (
        "negative epochs",
        ["train", "gan", "--workdir", "NEW", "--epochs", "-3"],
        "--epochs must be a positive integer, got -3",
    ),
    (
        "steps not a number",
        ["train", "gan", "--workdir", "NEW", "--steps", "many"],
        "argument --steps: expected an integer, got 'many'",
    ),
    (
        "zero learning rate",
        ["train", "gan", "--workdir", "NEW", "--learning-rate", "0"],
        "--learning-rate must be > 0, got 0.0; pass e.g. 1e-4",
    ),
    (
        "negative seed",
        ["train", "gan", "--workdir", "NEW", "--seed", "-1"],
        "--seed must be a non-negative integer, got -1; pass e.g. 0",
    ),
    (
        "zero checkpoint interval",
        ["train", "gan", "--workdir", "NEW", "--checkpoint-every", "0"],
        "positive integer",
    ),
    (
        "zero noise dim",
        ["train", "gan", "--workdir", "NEW", "--noise-dim", "0"],
        "positive integer",
    ),
    (
        "bad widths",
        ["train", "gan", "--workdir", "NEW", "--g-features", "8,4"],
        "--g-features needs 3 widths (dense, conv, conv), got (8, 4); pass e.g. 256,128,64",
    ),
    (
        "zero width",
        ["train", "gan", "--workdir", "NEW", "--d-features", "4,0"],
        "each of --d-features must be a positive integer, got 0",
    ),
    (
        "unknown option",
        ["train", "gan", "--workdir", "NEW", "--bogus"],
        "unrecognized arguments: --bogus",
    ),
    ("missing workdir", ["train", "gan"], "the following arguments are required: --workdir"),
    ("unknown model", ["train", "wgan", "--workdir", "NEW"], "invalid choice: 'wgan'"),
    ("unknown command", ["fit", "--workdir", "NEW"], "invalid choice: 'fit'"),
    (
        "unknown data source",
        ["train", "gan", "--workdir", "NEW", "--data-source", "web"],
        "invalid choice: 'web'",
    ),
    (
        "more devices than present",
        ["train", "gan", "--workdir", "NEW", *TINY, "--devices", "64"],
        "devices must be in 1..1 (this machine's count), got 64",
    ),
    (
        "unknown compute dtype",
        ["train", "gan", "--workdir", "NEW", "--compute-dtype", "float16"],
        "invalid choice: 'float16'",
    ),
    (
        "bf16 conv classifier",
        [
            "train",
            "sgan",
            "--workdir",
            "NEW",
            "--labels",
            "100",
            "--model",
            "conv",
            "--compute-dtype",
            "bfloat16",
        ],
        "available for the mlp model only",
    ),
    (
        "workdir is a file",
        ["train", "gan", "--workdir", "FILE", *TINY],
        "is a file; pass a folder path",
    ),
    (
        "workdir inside a file",
        ["train", "gan", "--workdir", "FILE/run", *TINY],
        "cannot create workdir",
    ),
    (
        "batch larger than data",
        ["train", "gan", "--workdir", "NEW", *TINY[2:], "--batch-size", "70000"],
        "batch_size 70000 exceeds the 60000 training images",
    ),
    (
        "another model's workdir",
        ["train", "gan", "--workdir", "OTHER", *TINY],
        "holds checkpoints of task 'sgan'",
    ),
    (
        "conflicting config",
        ["train", "gan", "--workdir", "TRAINED", *TINY, "--seed", "5"],
        "seed: stored 0 vs requested 5",
    ),
    (
        "conflicting shape",
        ["train", "gan", "--workdir", "TRAINED", *TINY, "--g-features", "16,4,4"],
        "g_features: stored [8, 4, 4] vs requested [16, 4, 4]",
    ),
    (
        "sample zero",
        ["sample", "--workdir", "TRAINED", "--num", "0", "--out", "NEW/x.png"],
        "positive integer",
    ),
    (
        "sample not png",
        ["sample", "--workdir", "TRAINED", "--out", "NEW/x.jpg"],
        "--out must name a .png file",
    ),
    (
        "sample into a missing folder",
        ["sample", "--workdir", "TRAINED", "--out", "NEW/x.png"],
        "--out's folder",
    ),
    (
        "abbreviated option",
        ["train", "gan", "--workdir", "NEW", "--epoch", "1"],
        "unrecognized arguments: --epoch",
    ),
    (
        "zero checkpoints kept",
        ["train", "gan", "--workdir", "NEW", "--keep-checkpoints", "0"],
        "expected a positive integer, got 0",
    ),
    ("sample untrained", ["sample", "--workdir", "NEW", "--out", "NEW/x.png"], "no checkpoints in"),
    ("info untrained", ["info", "--workdir", "NEW"], "no checkpoints in"),
    ("info of a file", ["info", "--workdir", "FILE"], "no checkpoints in"),
    # the semi-supervised GAN, the supervised baseline, evaluate and sweep
    (
        "labels not a multiple of 10",
        ["train", "sgan", "--workdir", "NEW", "--labels", "25"],
        "labels must be a positive multiple of 10",
    ),
    (
        "labels zero",
        ["train", "supervised", "--workdir", "NEW", "--labels", "0"],
        "labels must be a positive multiple",
    ),
    (
        "labels beyond the split",
        ["train", "sgan", "--workdir", "NEW", "--labels", "60000", "--steps", "1"],
        "has only 5421 of class 5; pass at most 54210",
    ),
    (
        "labels missing",
        ["train", "sgan", "--workdir", "NEW"],
        "the following arguments are required: --labels",
    ),
    (
        "duplicate data seeds",
        ["train", "sgan", "--workdir", "NEW", "--labels", "20", "--data-seeds", "1,1"],
        "--data-seeds has duplicates",
    ),
    (
        "both data seed options",
        [
            "train",
            "sgan",
            "--workdir",
            "NEW",
            "--labels",
            "20",
            "--data-seed",
            "1",
            "--data-seeds",
            "0,1",
        ],
        "not allowed with argument",
    ),
    (
        "data seed a list",
        ["train", "sgan", "--workdir", "NEW", "--labels", "20", "--data-seed", "0,1"],
        "argument --data-seed: expected a non-negative integer, got '0,1'",
    ),
    (
        "negative cgan learning rate",
        ["train", "cgan", "--workdir", "NEW", "--learning-rate", "-1"],
        "--learning-rate must be > 0, got -1.0",
    ),
    (
        "data seeds not numbers",
        ["train", "sgan", "--workdir", "NEW", "--labels", "20", "--data-seeds", "a,b"],
        "expected comma-separated non-negative integers",
    ),
    (
        "unknown classifier model",
        ["train", "sgan", "--workdir", "NEW", "--labels", "20", "--model", "resnet"],
        "invalid choice: 'resnet'",
    ),
    (
        "beta1 out of range",
        ["train", "supervised", "--workdir", "NEW", "--labels", "20", "--beta1", "1.5"],
        "beta1 must be in [0, 1)",
    ),
    (
        "unknown generator loss",
        ["train", "sgan", "--workdir", "NEW", "--labels", "20", "--g-loss", "wasserstein"],
        "invalid choice: 'wasserstein'",
    ),
    (
        "conflicting labels",
        ["train", "supervised", "--workdir", "CLS", "--labels", "50", "--batch-size", "10"],
        "labels: stored 20 vs requested 50",
    ),
    (
        "sgan into a supervised workdir",
        ["train", "sgan", "--workdir", "CLS", "--labels", "20", "--batch-size", "10"],
        "holds checkpoints of task 'supervised', not 'sgan'",
    ),
    (
        "sample without a generator",
        ["sample", "--workdir", "CLS", "--out", "CLS/x.png"],
        "has no generator",
    ),
    (
        "evaluate one sample",
        ["evaluate", "--workdir", "TRAINED", "--samples", "1"],
        "expected an integer >= 2, got 1",
    ),
    # sample quality and the conditional GAN
    (
        "digit of an unconditional gan",
        ["sample", "--workdir", "TRAINED", "--digit", "7", "--out", "TRAINED/x.png"],
        "is unconditional and cannot draw a chosen digit",
    ),
    (
        "digit out of range",
        ["sample", "--workdir", "TRAINED", "--digit", "12", "--out", "NEW/x.png"],
        "expected a digit 0..9, got 12",
    ),
    (
        "unknown gan recipe",
        ["train", "gan", "--workdir", "NEW", "--recipe", "best"],
        "invalid choice: 'best'",
    ),
    (
        "unknown gan loss",
        ["train", "gan", "--workdir", "NEW", "--loss", "wasserstein"],
        "invalid choice: 'wasserstein' (choose from",
    ),
    (
        "zero critic steps",
        ["train", "gan", "--workdir", "NEW", "--critic-steps", "0"],
        "--critic-steps must be a positive integer, got 0",
    ),
    (
        "negative gp weight",
        ["train", "cgan", "--workdir", "NEW", "--gp-weight", "-1"],
        "--gp-weight must be >= 0, got -1.0; pass e.g. 10",
    ),
    (
        "critic steps beyond the data",
        [
            "train",
            "gan",
            "--workdir",
            "NEW",
            *TINY[2:],
            "--batch-size",
            "30000",
            "--critic-steps",
            "3",
        ],
        "critic_steps × batch_size 90000 exceeds the 60000 training images; pass a smaller "
        "--batch-size or --critic-steps",
    ),
    (
        "gan beta1 out of range",
        ["train", "cgan", "--workdir", "NEW", "--beta1", "1"],
        "beta1 must be in [0, 1)",
    ),
    (
        "generator ema out of range",
        ["train", "gan", "--workdir", "NEW", "--g-ema-decay", "1.5"],
        "--g-ema-decay must be in [0, 1)",
    ),
    (
        "one evaluation sample",
        ["train", "gan", "--workdir", "NEW", "--eval-every-epoch", "--eval-samples", "1"],
        "--eval-samples must be >= 2 (a covariance needs two samples), got 1",
    ),
    (
        "cgan into a gan workdir",
        ["train", "cgan", "--workdir", "TRAINED", *TINY],
        "holds checkpoints of task 'gan', not 'cgan'",
    ),
    ("evaluate untrained", ["evaluate", "--workdir", "NEW"], "no checkpoints in"),
    (
        "sweep bad label count",
        ["sweep", "--labels", "10,15", "--out", "NEW"],
        "labels must be a positive multiple",
    ),
    (
        "sweep labels beyond the split",
        ["sweep", "--labels", "10,60000", "--out", "NEW", "--steps", "1"],
        "pass at most 54210",
    ),
    (
        "sweep negative learning rate",
        ["sweep", "--labels", "10", "--out", "NEW", "--learning-rate", "-1"],
        "--learning-rate must be > 0, got -1.0; pass e.g. 1e-4",
    ),
    (
        "sweep unknown method",
        ["sweep", "--labels", "10", "--out", "NEW", "--methods", "gan"],
        "comma-separated subset of sgan,supervised",
    ),
    (
        "sweep out is a file",
        ["sweep", "--labels", "10", "--out", "FILE"],
        "is a file; pass a folder path",
    ),
]


def snapshot(*roots):
    files = {}
    for root in roots:
        root = pathlib.Path(root)
        paths = [root] if root.is_file() else sorted(root.rglob("*")) if root.exists() else []
        for path in paths:
            if path.is_file():
                files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                files[str(path)] = "dir"
    return files


@pytest.fixture(scope="module")
def places(tmp_path_factory, request):
    request.getfixturevalue("mnist_train")
    root = tmp_path_factory.mktemp("bad_input")
    trained = root / "trained"
    assert main(["train", "gan", "--workdir", str(trained), *TINY, "--steps", "2"]) == 0
    other = root / "other"
    store = CheckpointStore(other)
    store.save(4, {"w": np.zeros(3, np.float32)}, {"task": "sgan", "labels": 100}, {})
    store.close()
    classifier = root / "classifier"
    assert (
        main(
            [
                "train",
                "supervised",
                "--workdir",
                str(classifier),
                "--labels",
                "20",
                "--batch-size",
                "10",
                "--steps",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    file = root / "file"
    file.write_text("keep me")
    return {
        "TRAINED": trained,
        "OTHER": other,
        "CLS": classifier,
        "FILE": file,
        "NEW": root / "new",
    }


@pytest.mark.parametrize("argv, message", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(argv, message, places, capsys):
    def fill(arg):
        for name, path in places.items():
            arg = arg.replace(name, str(path)) if arg.startswith(name) else arg
        return arg

    argv = [fill(a) for a in argv]
    before = snapshot(*places.values())
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    # Info lines (e.g. which MNIST route was used) may come first; the error is the one last line.
    lines = err.strip().splitlines()
    assert lines[-1].startswith("gan-jax") and ": error: " in lines[-1], err
    assert sum(": error: " in line for line in lines) == 1 and "Traceback" not in err, err
    assert message in lines[-1], err
    assert snapshot(*places.values()) == before


API_CASES = [
    (
        "config batch size",
        lambda: GANConfig(batch_size=0),
        ConfigError,
        "batch_size must be a positive integer",
    ),
    (
        "config bool epochs",
        lambda: GANConfig(epochs=True),
        ConfigError,
        "epochs must be a positive integer",
    ),
    ("config dropout", lambda: GANConfig(dropout=1.5), ConfigError, "dropout must be in [0, 1)"),
    (
        "config source",
        lambda: GANConfig(data_source="s3"),
        ConfigError,
        "data_source must be one of",
    ),
    ("config widths", lambda: GANConfig(d_features=(4,)), ConfigError, "d_features needs 2 widths"),
    ("unknown split", lambda: load("mnist", "valid"), ConfigError, "split must be one of"),
    (
        "images wrong shape",
        lambda: check_images(np.zeros((3, 32, 32, 1), np.uint8)),
        DataError,
        "[N, 28, 28, 1]",
    ),
    (
        "images wrong dtype",
        lambda: check_images(np.zeros((3, 28, 28, 1), np.float64)),
        DataError,
        "uint8",
    ),
    (
        "empty images",
        lambda: check_images(np.zeros((0, 28, 28, 1), np.uint8)),
        DataError,
        "[N, 28, 28, 1]",
    ),
    (
        "sample count",
        lambda: sample_images(GANTask(GANConfig()), None, 0),
        ConfigError,
        "num must be a positive",
    ),
    (
        "sgan labels",
        lambda: SGANConfig(labels=15),
        ConfigError,
        "labels must be a positive multiple of 10",
    ),
    (
        "sgan no data seeds",
        lambda: SGANConfig(data_seeds=()),
        ConfigError,
        "data_seeds must be one or more",
    ),
    ("sgan g loss", lambda: SGANConfig(g_loss="hinge"), ConfigError, "g_loss must be one of"),
    (
        "sgan balance weight",
        lambda: SGANConfig(balance_weight=-0.5),
        ConfigError,
        "balance_weight must be >= 0, got -0.5; pass e.g. 1, or 0 for none",
    ),
    (
        "sgan ema decay",
        lambda: SGANConfig(ema_decay=1.0),
        ConfigError,
        "ema_decay must be in [0, 1)",
    ),
    (
        "recipe model",
        lambda: SupervisedConfig.recipe("resnet"),
        ConfigError,
        "model must be one of mlp, conv",
    ),
    (
        "subset too large",
        lambda: labeled_subset(np.repeat(np.arange(10), 3), 40, 0, 10),
        ConfigError,
        "pass at most 30",
    ),
    (
        "gan recipe",
        lambda: GANConfig.recipe("best"),
        ConfigError,
        "recipe must be one of tutorial, improved",
    ),
    (
        "recipe and another model",
        lambda: SupervisedConfig.recipe("mlp", model="conv"),
        ConfigError,
        "model 'conv' differs from recipe 'mlp'; pass SupervisedConfig.recipe('conv', ...)",
    ),
    (
        "one eval sample",
        lambda: GANConfig(eval_samples=1),
        ConfigError,
        "eval_samples must be >= 2",
    ),
    (
        "d learning rate",
        lambda: GANConfig(d_learning_rate=0.0),
        ConfigError,
        "d_learning_rate must be > 0",
    ),
    (
        "gan loss",
        lambda: GANConfig(loss="wasserstein"),
        ConfigError,
        "loss must be one of non_saturating, hinge, wgan_gp, least_squares, got 'wasserstein'",
    ),
    (
        "critic steps",
        lambda: CGANConfig(critic_steps=0),
        ConfigError,
        "critic_steps must be a positive integer",
    ),
    (
        "gp weight",
        lambda: GANConfig(gp_weight=-1.0),
        ConfigError,
        "gp_weight must be >= 0, got -1.0; pass e.g. 10",
    ),
    (
        "sample digit 10",
        lambda: sample_images(CGANTask(CGANConfig()), None, 4, digit=10),
        ConfigError,
        "digit must be an integer 0..9",
    ),
    (
        "feature widths",
        lambda: FeatureNetConfig(widths=()),
        ConfigError,
        "widths needs at least one",
    ),
    ("too few features", lambda: feature_statistics(np.zeros((1, 3))), ValueError, "[N >= 2, D]"),
]


@pytest.mark.parametrize(
    "call, error, message", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES]
)
def test_api_bad_input(call, error, message):
    with pytest.raises(error) as err:
        call()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_train_api_refuses_wrong_images(tmp_path):
    from gan_jax import Split, train

    bad = Split(np.zeros((16, 28, 28, 1), np.float32), np.zeros(16, np.int32))
    with pytest.raises(DataError, match="uint8"):
        train(GANConfig(batch_size=8), tmp_path / "w", data=bad, progress=False)
    assert not (tmp_path / "w" / "metrics.jsonl").exists()
