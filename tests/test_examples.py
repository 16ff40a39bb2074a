"""The notebooks in examples/ run top to bottom, with their `parameters` cell made tiny.

Code cells run in order in one fresh Python process (as a kernel would run them), with a cell
overriding the parameters inserted after the cell tagged `parameters` (papermill's convention);
figures go to matplotlib's Agg backend.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"
TINY = {
    "quickstart.ipynb": (
        "EPOCHS = 1\nBATCH_SIZE = 8\nSTEPS = 3\nEVAL_SAMPLES = 50\nWORKDIR = 'runs/notebook_gan'\n"
    )
}


def script(notebook: pathlib.Path, overrides: str) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    parts = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        assert not any(line.lstrip().startswith(("%", "!")) for line in source.splitlines()), (
            "magics would not run outside IPython"
        )
        parts.append(source)
        if "parameters" in cell["metadata"].get("tags", []):
            parts.append(overrides)
    assert overrides in parts, "the notebook has no cell tagged 'parameters'"
    return "\n\n".join(parts)


def test_every_example_has_tiny_settings():
    assert sorted(p.name for p in EXAMPLES.glob("*.ipynb")) == sorted(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_notebook_runs(name, tmp_path, mnist_train):
    code = script(EXAMPLES / name, TINY[name])
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(EXAMPLES.parent)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # the epoch line, as the CLI prints it
    assert "epoch 1 step 3 (partial): d_loss" in result.stderr
    quality = json.loads(result.stdout[result.stdout.index("{") : result.stdout.rindex("}") + 1])
    assert quality["fd"] > quality["fd_floor"] > 0 and len(quality["fd_network"]) == 16
    assert (tmp_path / "runs" / "notebook_gan" / "metrics.jsonl").exists()
