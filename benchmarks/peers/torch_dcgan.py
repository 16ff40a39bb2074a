"""The tutorial DCGAN's training step in PyTorch, timed beside gan_jax's: prints JSON lines and the ratio.

    pip install -e ".[peers]"    # torch and tensorflow: an optional extra, never installed by CI
    python -m benchmarks.peers.torch_dcgan [--batch-size 256] [--steps 10] [--compile] [--device cuda]

The step is the one gan_jax runs (REFERENCE.md §1, `gan_jax.tasks.gan`): G(z) once; a D update on
real → 1, fake → 0 (fakes detached); then the non-saturating G loss through the *updated* D,
back-propagated into G. Adam(1e-4) for each model; float32. The last line times gan_jax's own
step (`gan_jax.bench.bench_dcgan`) in the same process, after PyTorch is done, and gives the
ratio `torch ms / gan_jax ms` (> 1: gan_jax is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import time


def build(torch):
    nn = torch.nn

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            bn = lambda c: nn.BatchNorm1d(c, eps=1e-3, momentum=0.01) if c == 7 * 7 * 256 else nn.BatchNorm2d(
                c, eps=1e-3, momentum=0.01)
            self.dense = nn.Sequential(nn.Linear(100, 7 * 7 * 256, bias=False), bn(7 * 7 * 256), nn.LeakyReLU(0.3))
            self.convs = nn.Sequential(
                nn.ConvTranspose2d(256, 128, 5, 1, padding=2, bias=False), bn(128), nn.LeakyReLU(0.3),
                nn.ConvTranspose2d(128, 64, 5, 2, padding=2, output_padding=1, bias=False), bn(64), nn.LeakyReLU(0.3),
                nn.ConvTranspose2d(64, 1, 5, 2, padding=2, output_padding=1, bias=False), nn.Tanh())

        def forward(self, z):
            return self.convs(self.dense(z).view(-1, 256, 7, 7))

    discriminator = nn.Sequential(
        nn.Conv2d(1, 64, 5, 2, padding=2), nn.LeakyReLU(0.3), nn.Dropout(0.3),
        nn.Conv2d(64, 128, 5, 2, padding=2), nn.LeakyReLU(0.3), nn.Dropout(0.3),
        nn.Flatten(), nn.Linear(7 * 7 * 128, 1))
    return Generator(), discriminator


def time_torch(batch_size: int, steps: int, device: str, compile_: bool) -> dict:
    import torch

    torch.manual_seed(0)
    g, d = (m.to(device).train() for m in build(torch))
    g_opt, d_opt = torch.optim.Adam(g.parameters(), 1e-4), torch.optim.Adam(d.parameters(), 1e-4)
    bce = torch.nn.BCEWithLogitsLoss()
    real = torch.rand(batch_size, 1, 28, 28, device=device) * 2 - 1
    ones, zeros = torch.ones(batch_size, 1, device=device), torch.zeros(batch_size, 1, device=device)

    def step():
        fakes = g(torch.randn(batch_size, 100, device=device))
        d_opt.zero_grad(set_to_none=True)
        logits = d(torch.cat([real, fakes.detach()]))
        d_loss = bce(logits[:batch_size], ones) + bce(logits[batch_size:], zeros)
        d_loss.backward()
        d_opt.step()
        g_opt.zero_grad(set_to_none=True)
        g_loss = bce(d(fakes), ones)
        g_loss.backward()
        g_opt.step()
        return d_loss, g_loss

    if compile_:
        step = torch.compile(step)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    start = time.perf_counter()
    step()
    sync()
    first_s = time.perf_counter() - start
    step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        losses = step()
    sync()
    ms = 1000 * (time.perf_counter() - start) / steps
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    return {"impl": "pytorch " + ("torch.compile" if compile_ else "eager"), "torch": torch.__version__,
            "device": name, "threads": torch.get_num_threads(), "batch_size": batch_size, "timed_steps": steps,
            "first_step_s": round(first_s, 2), "ms_per_step": round(ms, 1),
            "final_d_loss": float(losses[0])}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--compile", action="store_true", help="torch.compile the step")
    parser.add_argument("--no-jax", action="store_true", help="time PyTorch only")
    args = parser.parse_args(argv)
    torch_row = time_torch(args.batch_size, args.steps, args.device, args.compile)
    print(json.dumps(torch_row), flush=True)
    if args.no_jax:
        return
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share the GPU with PyTorch
    from gan_jax.bench import bench_dcgan, environment

    jax_row = {**bench_dcgan(args.batch_size, args.steps), **environment()}
    print(json.dumps({"impl": "gan_jax", **jax_row}), flush=True)
    print(json.dumps({"ratio_torch_ms_over_gan_jax_ms": round(torch_row["ms_per_step"] / jax_row["ms_per_step"], 3),
                      "peer": torch_row["impl"], "batch_size": args.batch_size}))


if __name__ == "__main__":
    main()
