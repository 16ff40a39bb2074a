import numpy as np
from PIL import Image

from gan_jax import plots


def test_image_grid_layout_and_pixel_mapping():
    images = np.stack([np.full((28, 28, 1), v, np.float32) for v in (-1.0, 1.0, 0.0)])
    grid = plots.image_grid(images, cols=2, pad=2)
    assert grid.shape == (2 * 30 + 2, 2 * 30 + 2) and grid.dtype == np.uint8
    assert grid[2:30, 2:30].max() == 0  # -1 → black
    assert grid[2:30, 32:60].min() == 255  # +1 → white
    assert np.all(grid[32:60, 2:30] == 128)  # 0 → mid grey (127.5 rounded)
    # empty cell and padding stay black
    assert grid[32:60, 32:60].max() == 0 and grid[0:2].max() == 0


def test_save_grid_and_figures(tmp_path):
    images = np.random.default_rng(0).uniform(-1, 1, (5, 28, 28, 1)).astype(np.float32)
    plots.save_grid(tmp_path / "g" / "grid.png", images, scale=2)
    assert Image.open(tmp_path / "g" / "grid.png").size == ((3 * 30 + 2) * 2, (2 * 30 + 2) * 2)
    plots.save_real_vs_generated(tmp_path / "rvg.png", images, images)
    plots.save_loss_curves(
        tmp_path / "loss.png",
        [{"epoch": 1, "d_loss": 1.2, "g_loss": 0.7}, {"epoch": 2, "d_loss": 1.3, "g_loss": 0.8}],
    )
    assert (
        Image.open(tmp_path / "rvg.png").size[0] > 0
        and Image.open(tmp_path / "loss.png").size[0] > 0
    )


def test_loss_curves_per_few_steps_are_a_line_and_the_epoch_means_dots(tmp_path, monkeypatch):
    import matplotlib.axes

    windows = [
        {"step": s, "steps": 10, "d_loss": 1.0 + 0.01 * s, "g_loss": 0.7}
        for s in range(10, 101, 10)
    ]
    rows = [{"epoch": 1, "step": 100, "d_loss": 1.5, "g_loss": 0.7}]
    plots.save_loss_curves(tmp_path / "loss.png", rows, ("d_loss", "g_loss"), windows)
    assert Image.open(tmp_path / "loss.png").size[0] > 0
    drawn, plot = [], matplotlib.axes.Axes.plot

    def record(self, *args, **kwargs):
        drawn.append((args[0], kwargs["label"]))
        return plot(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", record)
    plots.save_loss_curves(tmp_path / "loss.png", rows, ("d_loss", "g_loss"), windows)
    assert [(len(x), label) for x, label in drawn] == [
        (10, "d_loss (mean of 10 steps)"),
        (1, "d_loss (epoch mean)"),
        (10, "g_loss (mean of 10 steps)"),
        (1, "g_loss (epoch mean)"),
    ]
