"""The user's own images: folder:, npz: and tfds: datasets, shaping, caching, training on them, and
their bad inputs. The data is real and offline: scikit-learn's 1,797 handwritten 8×8 digits."""

import hashlib
import pathlib
import shutil

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from gan_jax import CGANConfig, CheckpointError, DataError, GANConfig, SGANConfig, train
from gan_jax import data as data_lib
from gan_jax.api import load_run, sample_images
from gan_jax.checkpoint import params_fingerprint
from gan_jax.cli import main
from gan_jax.data import loading, shaping, user
from gan_jax.data.sources import folder as folder_source
from gan_jax.features import feature_net_config
from gan_jax.tasks import make_task

TINY = dict(batch_size=16, noise_dim=8, g_features=(8, 4, 4), d_features=(4, 8))
TINY_ARGS = (
    "--batch-size 16 --noise-dim 8 --g-features 8,4,4 --d-features 4,8 --no-progress".split()
)


@pytest.fixture(autouse=True)
def _fresh_memo():
    """Each test reads its data as a new process would (the per-process memo is emptied)."""
    user._READ.clear()
    loading._REMEMBERED.clear()
    yield
    user._READ.clear()
    loading._REMEMBERED.clear()


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The digits as a class-folder tree with train/ and test/, the same as an .npz, and a labeled
    folder of 50 (5 per class, with the test split) beside a flat folder of the other 1,450."""
    root = tmp_path_factory.mktemp("digits")
    found = load_digits()
    x = np.clip(found.images * 16, 0, 255).astype(np.uint8)
    y = found.target.astype(np.int64)
    splits = {"train": (x[:1500], y[:1500]), "test": (x[1500:], y[1500:])}
    for split, (images, labels) in splits.items():
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            place = root / "tree" / split / str(label)
            place.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(place / f"{i:04d}.png")
            if split == "train":
                few = sum(labels[:i] == label) < 5
                target = root / "labeled" / "train" / str(label) if few else root / "unlabeled"
                target.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(target / f"{i:04d}.png")
    shutil.copytree(root / "tree" / "test", root / "labeled" / "test")
    np.savez(root / "digits.npz", x=x[:1500], y=y[:1500], x_test=x[1500:], y_test=y[1500:])
    return root


def test_a_folder_and_an_npz_of_the_same_images_are_the_same_dataset(digits):
    tree = data_lib.describe(f"folder:{digits / 'tree'}", 28)
    npz = data_lib.describe(f"npz:{digits / 'digits.npz'}", 28)
    assert tree.shape == npz.shape == (28, 28, 1) and tree.num_classes == npz.num_classes == 10
    assert tree.class_names == tuple("0123456789") and tree.splits == ("train", "test")
    assert tree.class_counts == npz.class_counts and sum(tree.class_counts["test"]) == 297
    for split in ("train", "test"):
        a = data_lib.load(f"folder:{digits / 'tree'}", split, image_size=28)
        b = data_lib.load(f"npz:{digits / 'digits.npz'}", split, image_size=28)
        order = np.argsort(b.labels, kind="stable")  # a folder lists its images class by class
        np.testing.assert_array_equal(a.images, b.images[order])
        np.testing.assert_array_equal(a.labels, b.labels[order])
    stored = data_lib.load(f"npz:{digits / 'digits.npz'}", "train")  # not reshaped: as stored
    assert stored.images.shape == (1500, 8, 8, 1) and stored.images.dtype == np.uint8


def test_a_folder_is_decoded_once_per_content(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_JAX_DATA", str(tmp_path / "cache"))
    tree = tmp_path / "tree"
    shutil.copytree(digits / "tree" / "train", tree)
    decoded = []
    real_read = folder_source.read
    monkeypatch.setattr(folder_source, "read", lambda *a: decoded.append(a) or real_read(*a))
    first = data_lib.load(f"folder:{tree}", "train", image_size=28)
    user._READ.clear()
    again = data_lib.load(f"folder:{tree}", "train", image_size=28)
    assert len(decoded) == 1 and np.array_equal(first.images, again.images)
    shutil.copy(tree / "3" / "0003.png", tree / "3" / "extra.png")  # a changed folder
    user._READ.clear()
    changed = data_lib.load(f"folder:{tree}", "train", image_size=28)
    assert len(decoded) == 2 and len(changed.images) == len(first.images) + 1
    user._READ.clear()
    data_lib.load(f"folder:{tree}", "train", image_size=32)  # another shape is another entry
    assert len(decoded) == 3


def test_shaping_crops_the_centre_square_resizes_and_converts_channels():
    wide = np.zeros((1, 10, 30, 1), np.uint8)
    wide[:, :, 10:20] = 255  # the centre 10×10 square is white, the sides black
    assert np.all(shaping.shape_images(wide, 20, None) == 255)
    assert shaping.shape_images(wide, 20, None).shape == (1, 20, 20, 1)
    grey = np.full((2, 4, 4, 1), 77, np.uint8)
    assert shaping.shape_images(grey, None, 3).tolist() == np.full((2, 4, 4, 3), 77).tolist()
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 255
    assert np.all(shaping.shape_images(red, None, 1) == 76)  # ITU-R 601-2 luma: 0.299 · 255
    assert shaping.shape_images(grey, None, None) is grey  # nothing to change: no copy
    assert data_lib.describe("mnist", 64, 3).shape == (64, 64, 3)


def test_a_prepared_tfds_dataset_is_read_by_name():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        spec = data_lib.describe("tfds:mnist", 32)
        split = data_lib.load("tfds:mnist", "train", image_size=32)
    assert spec.shape == (32, 32, 1) and spec.num_classes == 10 and spec.splits == ("train", "test")
    assert split.images.shape == (12, 32, 32, 1) and split.labels.shape == (12,)


@pytest.mark.parametrize("kind", ["gan", "cgan"])
@pytest.mark.parametrize("source", ["folder", "npz"])
def test_gan_and_cgan_train_on_the_digits(digits, tmp_path, kind, source):
    name = f"folder:{digits / 'tree'}" if source == "folder" else f"npz:{digits / 'digits.npz'}"
    config = (GANConfig if kind == "gan" else CGANConfig)(
        dataset=name, image_size=28, steps=2, **TINY
    )
    state = train(config, tmp_path / "run", progress=False)
    assert int(state.step) == 2 and (tmp_path / "run" / "losses.png").exists()
    task, restored = load_run(tmp_path / "run")
    images = sample_images(task, restored, 4, digit=3 if kind == "cgan" else None)
    assert images.shape == (4, 28, 28, 1) and np.all(np.abs(images) <= 1)


def test_sampling_a_run_needs_no_data_and_a_changed_dataset_refuses_to_resume(digits, tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(digits / "tree", tree)
    config = GANConfig(dataset=f"folder:{tree}", image_size=28, steps=1, **TINY)
    train(config, tmp_path / "run", progress=False)
    shutil.move(tree, tmp_path / "moved")
    user._READ.clear()
    task, state = load_run(tmp_path / "run")  # the workdir's dataset.json gives the shape
    assert sample_images(task, state, 2).shape == (2, 28, 28, 1)
    shutil.move(tmp_path / "moved", tree)
    (tree / "train" / "0" / "0000.png").unlink()
    user._READ.clear()
    loading._REMEMBERED.clear()
    with pytest.raises(CheckpointError, match=r"changed since .* \(class_counts differ"):
        train(
            GANConfig(dataset=f"folder:{tree}", image_size=28, steps=2, **TINY),
            tmp_path / "run",
            progress=False,
        )


def test_the_sgan_learns_from_50_labeled_digits_and_the_rest_unlabeled(digits, tmp_path):
    config = SGANConfig.recipe(
        "conv",
        dataset=f"folder:{digits / 'labeled'}",
        unlabeled=f"folder:{digits / 'unlabeled'}",
        image_size=28,
        labels=50,
        steps=2,
        batch_size=16,
    )
    train_split = data_lib.load_for(config, "train")
    assert len(train_split.images) == 1500 and np.sum(train_split.labels >= 0) == 50
    task = make_task(config)
    device = task.feed.arrays(train_split)
    assert device["labeled_x"].shape == (1, 50, 28, 28, 1) and device["images"].shape[0] == 1500
    np.testing.assert_array_equal(
        np.sort(np.asarray(device["labeled_y"])[0]), np.repeat(np.arange(10), 5)
    )
    state = train(config, tmp_path / "run", progress=False)
    result = task.report(state)
    assert result["num_test"] == 297 and 0 <= result["test_accuracy"] <= 1


def test_the_sgan_trains_on_an_npz_picking_its_labels_from_it(digits, tmp_path):
    config = SGANConfig.recipe(
        "mlp",
        dataset=f"npz:{digits / 'digits.npz'}",
        image_size=28,
        labels=50,
        data_seeds=(0, 1),
        steps=2,
        batch_size=16,
    )
    state = train(config, tmp_path / "run", progress=False)
    result = make_task(config).report(state)
    assert result["num_test"] == 297 and len(result["test_accuracy"]) == 2


def test_mnist_given_as_npz_trains_to_the_same_parameters_as_mnist(mnist_train, tmp_path):
    test = data_lib.load("mnist", "test")
    path = tmp_path / "mnist.npz"
    np.savez(
        path, x=mnist_train.images, y=mnist_train.labels, x_test=test.images, y_test=test.labels
    )
    states = [
        train(
            GANConfig(dataset=name, steps=2, **TINY),
            tmp_path / name.replace(":", "_").replace("/", "_"),
            progress=False,
        )
        for name in ("mnist", f"npz:{path}")
    ]
    assert params_fingerprint(states[0]) == params_fingerprint(states[1])


def test_unlabeled_images_give_clear_errors_for_tasks_that_need_labels(digits, tmp_path):
    flat = f"folder:{digits / 'unlabeled'}"
    assert data_lib.describe(flat, 28).num_classes == 0
    with pytest.raises(DataError, match="has no labels, and a cgan run needs them"):
        train(
            CGANConfig(dataset=flat, image_size=28, steps=1, **TINY), tmp_path / "c", progress=False
        )
    with pytest.raises(
        DataError, match="has no labels, so no feature network can be trained on it"
    ):
        feature_net_config(flat, 28)
    with pytest.raises(DataError, match="has no test split"):
        data_lib.load(flat, "test", image_size=28)


def snapshot(*roots):
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for root in roots
        for p in sorted(pathlib.Path(root).rglob("*"))
    }


@pytest.fixture(scope="module")
def bad(digits, tmp_path_factory):
    """One broken dataset per case, built from the digits."""
    root = tmp_path_factory.mktemp("bad")
    image = np.asarray(Image.open(digits / "tree" / "train" / "0" / "0000.png"))

    def folder(name, files):
        for relative, content in files.items():
            path = root / name / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                Image.fromarray(content).save(path)
        (root / name).mkdir(exist_ok=True)

    png = (digits / "tree" / "train" / "0" / "0000.png").read_bytes()
    folder("empty", {})
    folder("corrupt", {"a.png": image, "b.png": b"not an image at all"})
    folder("truncated", {"a.png": image, "b.png": png[: len(png) // 2]})
    folder("notes", {"a.png": image, "notes.txt": b"hello"})
    folder("sizes", {"a.png": image, "b.png": np.zeros((9, 9), np.uint8)})
    folder("colours", {"a.png": image, "b.png": np.zeros((8, 8, 3), np.uint8)})
    folder("one_class", {f"cats/{i}.png": image for i in range(16)})
    folder("mixed", {"a.png": image, "cats/b.png": image})
    folder("flat", {f"{i}.png": image for i in range(16)})
    x = np.zeros((4, 8, 8), np.uint8)
    np.savez(root / "short_y.npz", x=x, y=np.arange(3))
    np.savez(root / "bad_y.npz", x=x, y=np.array([0, 1, -1, 0]))
    np.savez(root / "float_x.npz", x=x.astype(np.float32))
    np.savez(root / "no_x.npz", images=x)
    return root


BAD_CASES = [
    (
        "missing folder",
        ["gan", "--dataset", "folder:BAD/nowhere"],
        "does not exist; pass an existing folder",
    ),
    ("empty folder", ["gan", "--dataset", "folder:BAD/empty"], "has no PNG or JPEG images"),
    (
        "corrupt image",
        ["gan", "--dataset", "folder:BAD/corrupt"],
        "b.png is not a readable PNG/JPEG image",
    ),
    (
        "truncated image",
        ["gan", "--dataset", "folder:BAD/truncated"],
        "b.png is not a readable PNG/JPEG image",
    ),
    (
        "non-image file",
        ["gan", "--dataset", "folder:BAD/notes"],
        "notes.txt is not a PNG or JPEG image; remove it",
    ),
    ("mixed sizes", ["gan", "--dataset", "folder:BAD/sizes"], "images differ in size"),
    (
        "mixed grey and colour",
        ["gan", "--dataset", "folder:BAD/colours", "--image-size", "28"],
        "pass --channels 1 or --channels 3",
    ),
    (
        "one class for a cgan",
        ["cgan", "--dataset", "folder:BAD/one_class", "--image-size", "28"],
        "has one class; a conditional run needs two or more",
    ),
    (
        "images beside class folders",
        ["gan", "--dataset", "folder:BAD/mixed"],
        "mixes images (a.png) with class",
    ),
    (
        "y of the wrong length",
        ["cgan", "--dataset", "npz:BAD/short_y.npz"],
        "y has shape (3,) for 4 images",
    ),
    (
        "labels out of range",
        ["cgan", "--dataset", "npz:BAD/bad_y.npz"],
        "y has labels -1..1 out of range",
    ),
    ("float pixels", ["gan", "--dataset", "npz:BAD/float_x.npz"], "give uint8 pixels 0..255"),
    ("npz without x", ["gan", "--dataset", "npz:BAD/no_x.npz"], "which match no layout it reads"),
    ("missing npz", ["gan", "--dataset", "npz:BAD/nowhere.npz"], "does not exist"),
    ("unknown dataset kind", ["gan", "--dataset", "s3:bucket"], "dataset must be one of mnist"),
    (
        "image size too small",
        ["gan", "--image-size", "4"],
        "--image-size must be an integer in 8..256",
    ),
    ("two channels", ["gan", "--channels", "2"], "channels must be 1 (grey) or 3 (colour)"),
    (
        "unlabeled dataset for an sgan",
        ["sgan", "--labels", "10", "--dataset", "folder:BAD/flat", "--image-size", "28"],
        "has no labels, and a sgan run needs them",
    ),
]


@pytest.mark.parametrize("argv, message", [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_bad_datasets_get_one_line_and_exit_2_and_write_nothing(
    bad, argv, message, tmp_path, monkeypatch, capsys
):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GAN_JAX_DATA", str(cache))
    argv = [a.replace("BAD", str(bad)) for a in argv]
    sizes = TINY_ARGS if argv[0] != "sgan" else ["--batch-size", "16", "--no-progress"]
    before = snapshot(bad)
    try:
        code = main(["train", *argv, "--workdir", str(tmp_path / "run"), *sizes, "--steps", "1"])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err, err
    assert sum(": error: " in line for line in lines) == 1 and message in lines[-1], err
    assert snapshot(bad) == before and not (tmp_path / "run").exists()
    # The cache may hold only a complete, verified entry of data that was readable.
    cached = sorted(p.name for p in cache.rglob("*") if p.is_file()) if cache.exists() else []
    assert all(name.endswith((".npz", ".npz.sha256")) for name in cached) and len(cached) % 2 == 0
