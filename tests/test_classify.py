"""A trained classifier put to use: `predict` (API and CLI) and `export` (issue 35 items 1-2)."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gan_jax import GANConfig, SGANConfig, Split, predict, train
from gan_jax.api import export_classifier, load_run
from tests.conftest import TINY, run_cli


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    return Split(
        rng.integers(0, 256, (60, 28, 28, 1), np.uint8), np.tile(np.arange(10, dtype=np.int32), 6)
    )


@pytest.fixture(scope="module")
def sgan_dir(tmp_path_factory, data):
    """Two data seeds' SGAN, 2 steps."""
    workdir = tmp_path_factory.mktemp("classify") / "sgan"
    config = SGANConfig(labels=20, batch_size=10, epochs=1, steps=2, data_seeds=(0, 1))
    train(config, workdir, data=data, test_data=data, progress=False)
    return workdir


def test_predict_gives_each_image_every_class_probability_and_the_members_mean(sgan_dir, data):
    result = predict(sgan_dir, data.images)
    probs = result["probabilities"]
    assert probs.shape == (60, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert result["class_names"] == [str(k) for k in range(10)] and result["ids"][:2] == ["0", "1"]
    assert result["classes"] == [str(k) for k in probs.argmax(axis=1)]
    np.testing.assert_array_equal(result["confidence"], probs.max(axis=1))
    members = [predict(sgan_dir, data.images, member=k)["probabilities"] for k in (0, 1)]
    np.testing.assert_allclose(probs, (members[0] + members[1]) / 2, rtol=1e-5, atol=1e-7)
    assert not np.allclose(members[0], members[1])
    # one member's classes are evaluate's: its argmax of the logits with the evaluation parameters
    task, state = load_run(sgan_dir)
    evaluated = task.predict(state, data.images)
    for k in (0, 1):
        np.testing.assert_array_equal(members[k].argmax(axis=1), evaluated[k])


def test_exported_classifier_runs_without_gan_jax_and_equals_predict(sgan_dir, data, tmp_path):
    out = tmp_path / "classifier.jax"
    info = export_classifier(sgan_dir, out)
    assert json.loads((tmp_path / "classifier.jax.json").read_text()) == info
    assert info["input_shape"] == ["batch", 28, 28, 1] and info["class_names"] == [
        str(k) for k in range(10)
    ]
    np.save(tmp_path / "images.npy", data.images[:7])  # a batch size the export never saw
    plain_jax = f"""
import json, sys
import numpy as np
from jax import export
classifier = export.deserialize(open({str(out)!r}, "rb").read())
probs = np.asarray(classifier.call(np.load({str(tmp_path / "images.npy")!r})))
assert "gan_jax" not in sys.modules
print(json.dumps(probs.tolist()))
"""
    done = subprocess.run(
        [sys.executable, "-c", plain_jax], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    exported = np.asarray(json.loads(done.stdout))
    np.testing.assert_allclose(
        exported, predict(sgan_dir, data.images[:7])["probabilities"], rtol=1e-5, atol=1e-6
    )


def test_cli_predict_writes_a_row_per_image_file(sgan_dir, data, tmp_path, capsys):
    folder = tmp_path / "scans"
    (folder / "ward_b").mkdir(parents=True)
    paths = [folder / "a.png", folder / "ward_b" / "b.png"]
    for path, image in zip(paths, data.images[:2], strict=True):
        Image.fromarray(image[..., 0]).save(path)
    out = tmp_path / "predictions.csv"
    assert (
        run_cli(["predict", "--workdir", sgan_dir, "--dataset", f"folder:{folder}", "--out", out])
        == 0
    )
    rows = list(csv.DictReader(out.open()))
    assert [row["id"] for row in rows] == [str(p) for p in paths]
    expected = predict(sgan_dir, data.images[:2])["probabilities"]
    for row, probs in zip(rows, expected, strict=True):
        assert row["class"] == str(int(probs.argmax())) and float(
            row["confidence"]
        ) == pytest.approx(probs.max(), abs=1e-6)
        assert [float(row[f"p_{k}"]) for k in range(10)] == pytest.approx(probs.tolist(), abs=1e-6)


def test_cli_predict_refuses_other_image_shapes_gan_workdirs_and_missing_members(
    sgan_dir, tmp_path, capsys
):
    odd = tmp_path / "odd"
    odd.mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(odd / "big.png")

    def error_line(argv):
        assert run_cli(argv) == 2
        return capsys.readouterr().err.strip().splitlines()[-1]

    assert error_line(["predict", "--workdir", sgan_dir, "--dataset", f"folder:{odd}"]) == (
        "gan-jax: error: images are 32×32×1, this classifier was trained on 28×28×1 images; "
        "give 28×28×1 images (the same --image-size and --channels as its training)"
    )
    assert error_line(
        ["predict", "--workdir", sgan_dir, "--dataset", "mnist", "--member", "2"]
    ) == ("gan-jax: error: member must be in 0..1 (this run's data seeds), got 2")
    gan_dir = tmp_path / "gan"
    rng = np.random.default_rng(0)
    train(
        GANConfig(epochs=1, steps=1, **TINY),
        gan_dir,
        data=Split(rng.integers(0, 256, (8, 28, 28, 1), np.uint8), None),
        progress=False,
    )
    assert error_line(["export", "--workdir", gan_dir, "--out", tmp_path / "gan.jax"]) == (
        "gan-jax: error: a gan workdir has no classifier; "
        "predict and export take an sgan or supervised workdir"
    )
    assert not (tmp_path / "gan.jax").exists()
