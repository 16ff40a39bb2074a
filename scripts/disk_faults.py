"""Disk faults against real `gan-jax` processes: full disk, failing disk, unwritable and deleted
workdirs, readers beside a training. One JSON line per case, then a summary line.

    python -m scripts.disk_faults [--root DIR] [--cases tmpfs_enospc,enospc,eio,...]

Every training is the tiny DCGAN on MNIST, 8 steps, a checkpoint every step. Cases:

- `tmpfs_enospc`: the workdir on a real 400 kB tmpfs (needs root and `mount`; skipped otherwise):
  the disk fills during a save; then the tmpfs is grown to 8 MB (space freed) and the same
  command reruns.
- `enospc`, `eio`: Orbax's background writer of step 4 fails with that errno (injected into
  `JsonCheckpointHandler._save_fn` in the training process through `--inject`); then the same
  command reruns without it.
- `readonly_checkpoints`, `readonly_workdir`: `chattr +i` (immutable even to root) on
  `checkpoints/`, or on the whole workdir, of a run at step 3 (skipped without chattr).
- `deleted`: the workdir is deleted (`rm -rf`) while a training runs.
- `readers`: `gan-jax info` (`gan_jax.api.run_info`) and `sample` in a loop for 8 s beside a
  training that keeps one checkpoint and saves every step.

A failing case must exit non-zero with one last line `gan-jax: error: ...` naming the workdir and no
Python traceback; after a fault the latest checkpoint must be the one before it, and a rerun must
resume from it and end with params_sha256, metrics.jsonl and losses.jsonl equal to a reference run.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROWS = ("metrics.jsonl", "losses.jsonl")
CASES = (
    "tmpfs_enospc",
    "enospc",
    "eio",
    "readonly_checkpoints",
    "readonly_workdir",
    "deleted",
    "readers",
)


def inject(code: int, from_step: int) -> None:
    """Makes Orbax's background JSON writer fail with `code` for checkpoints from `from_step` on."""
    from orbax.checkpoint._src.handlers.json_checkpoint_handler import JsonCheckpointHandler

    real = JsonCheckpointHandler._save_fn

    async def save_fn(self, x, directory):
        match = re.search(r"checkpoints/(\d+)", str(directory))
        if match and int(match.group(1)) >= from_step:
            raise OSError(code, os.strerror(code), str(directory))
        return await real(self, x, directory)

    JsonCheckpointHandler._save_fn = save_fn


def command(workdir: pathlib.Path, steps: int = 8, *extra: str, fault: str | None = None):
    from scripts.kill_resume_check import TINY

    run = ["-m", "scripts.disk_faults", "--inject", fault] if fault else ["-m", "gan_jax.cli"]
    every = ["--no-tensorboard", "--steps", str(steps), "--checkpoint-every", "1", *extra]
    return [sys.executable, *run, "train", "gan", "--workdir", str(workdir), *TINY, *every]


def run(cmd: list[str], timeout: float = 300) -> dict:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return {
        "returncode": done.returncode,
        "last_line": lines[-1] if lines else "",
        "stderr_lines": len(lines),  # with the data, device, resume and plan lines
        "traceback": "Traceback" in done.stderr,
        "resumed_from": _resumed(done.stderr),
    }


def _resumed(stderr: str) -> int | None:
    match = re.search(r"resuming \S+ from step (\d+)", stderr)
    return int(match.group(1)) if match else None


def latest_intact(workdir: pathlib.Path) -> int | None:
    """The latest step, restored and checked against its checksum (raises if it does not)."""
    from gan_jax.checkpoint import CheckpointStore
    from gan_jax.tasks import config_from_dict, make_task

    with CheckpointStore(workdir, create=False) as store:
        latest = store.latest_step()
        task = make_task(config_from_dict(store.read_config()))
        state, _ = store.restore(task.init(), latest)
        return int(state.step)


def same_as(workdir: pathlib.Path, reference: pathlib.Path) -> bool:
    from gan_jax.api import run_info

    rows = all((workdir / n).read_text() == (reference / n).read_text() for n in ROWS)
    return rows and run_info(workdir)["params_sha256"] == run_info(reference)["params_sha256"]


def one_line_stop(result: dict, workdir: pathlib.Path) -> bool:
    last = result["last_line"]
    return (
        result["returncode"] == 2
        and last.startswith("gan-jax: error:")
        and str(workdir) in last
        and not result["traceback"]
    )


def fault_then_rerun(root, reference, name, fault=None, before=None, free=None) -> dict:
    """Runs the training with a fault, checks the stop, frees it and checks the exact resume."""
    workdir = root / name
    if before:
        workdir = before(workdir)
    stopped = run(command(workdir, fault=fault))
    latest = latest_intact(workdir)
    if free:
        free(workdir)
    return outcome(name, workdir, reference, stopped, latest, resume_from=latest)


def outcome(name, workdir, reference, stopped, latest, resume_from) -> dict:
    """Reruns the training after a fault; ok when the stop was one line and the rerun resumed from
    `resume_from` and ended as the uninterrupted `reference`."""
    rerun = run(command(workdir))
    return {
        "case": name,
        "stop": stopped,
        "latest_after_fault": latest,
        "rerun": rerun,
        "ok": one_line_stop(stopped, workdir)
        and rerun["returncode"] == 0
        and rerun["resumed_from"] == resume_from
        and same_as(workdir, reference),
    }


def tmpfs_case(root, reference) -> dict:
    mount = root / "tmpfs"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)])
    if made.returncode != 0:
        return {"case": "tmpfs_enospc", "skipped": "mount -t tmpfs failed (not root?)"}
    try:
        grow = ["mount", "-o", "remount,size=8m", str(mount)]
        return fault_then_rerun(
            mount, reference, "tmpfs_enospc", free=lambda w: subprocess.run(grow, check=True)
        )
    finally:
        subprocess.run(["umount", str(mount)])


def readonly_case(root, reference, whole: bool) -> dict:
    name = "readonly_workdir" if whole else "readonly_checkpoints"
    workdir = root / name
    subprocess.run(command(workdir, 3), check=True, capture_output=True, timeout=300)
    target = ["-R", str(workdir)] if whole else [str(workdir / "checkpoints")]
    if subprocess.run(["chattr", "+i", *target], capture_output=True).returncode != 0:
        return {"case": name, "skipped": "chattr +i failed"}
    try:
        stopped = run(command(workdir))
    finally:
        subprocess.run(["chattr", "-i", *target])
    return outcome(name, workdir, reference, stopped, latest_intact(workdir), resume_from=3)


def deleted_case(root) -> dict:
    from gan_jax.checkpoint import CheckpointStore

    workdir = root / "deleted"
    proc = subprocess.Popen(command(workdir, 100000), stderr=subprocess.PIPE, text=True)
    try:
        while (CheckpointStore.latest_in(workdir) or 0) < 2 and proc.poll() is None:
            time.sleep(0.02)
        shutil.rmtree(workdir, ignore_errors=True)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
        proc.wait()
    lines = [line for line in err.splitlines() if line.strip()]
    result = {
        "returncode": proc.returncode,
        "last_line": lines[-1],
        "traceback": "Traceback" in err,
    }
    return {
        "case": "deleted",
        "stop": result,
        "ok": proc.returncode == 2 and "was deleted during training" in lines[-1]
        and not result["traceback"],
    }  # fmt: skip


def readers_case(root) -> dict:
    from gan_jax.api import run_info
    from gan_jax.checkpoint import CheckpointStore
    from gan_jax.errors import CheckpointError

    workdir = root / "readers"
    proc = subprocess.Popen(
        command(workdir, 100000, "--keep-checkpoints", "1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    read, other = [], []
    refused: dict[str, int] = {}
    try:
        while (CheckpointStore.latest_in(workdir) or 0) < 1 and proc.poll() is None:
            time.sleep(0.02)
        deadline = time.time() + 8
        while time.time() < deadline:
            try:
                read.append(run_info(workdir)["step"])
            except CheckpointError as err:
                key = re.sub(r"\d+", "N", str(err))[:160]
                refused[key] = refused.get(key, 0) + 1
            except Exception as err:  # noqa: BLE001 - counted: must stay empty
                other.append(f"{type(err).__name__}: {str(err)[:160]}")
        sample = subprocess.run(
            [sys.executable, "-m", "gan_jax.cli", "sample", "--workdir", str(workdir), "--num", "4",
             "--out", str(root / "readers_sample.png")],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        proc.kill()
        proc.wait()
    return {
        "case": "readers",
        "reads": len(read),
        "steps_read_in_order": read == sorted(read),
        "refused": refused,
        "other_errors": other,
        "sample_returncode": sample.returncode,
        "sample_last_line": (sample.stdout + sample.stderr).strip().splitlines()[-1],
        "ok": len(read) > 0 and read == sorted(read) and not other and sample.returncode in (0, 2),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--root", type=pathlib.Path, default=None)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--inject", default=None, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.inject:  # the training process of a case: ERRNO_NAME@STEP, then the CLI's arguments
        name, step = args.inject.split("@")
        inject(getattr(errno, name), int(step))
        from gan_jax.cli import main as cli_main

        return cli_main(rest)
    from gan_jax import setup_process

    setup_process(epoch_lines=False)  # as the CLI: the readers' echoes of a failed read stay out
    root = pathlib.Path(args.root or tempfile.mkdtemp(prefix="disk_faults_"))
    root.mkdir(parents=True, exist_ok=True)
    reference = root / "reference"
    subprocess.run(command(reference), check=True, capture_output=True, timeout=300)
    results = []
    for case in args.cases.split(","):
        if case == "tmpfs_enospc":
            result = tmpfs_case(root, reference)
        elif case in ("enospc", "eio"):
            result = fault_then_rerun(root, reference, case, fault=f"{case.upper()}@4")
        elif case.startswith("readonly"):
            result = readonly_case(root, reference, whole=case == "readonly_workdir")
        elif case == "deleted":
            result = deleted_case(root)
        else:
            result = readers_case(root)
        print(json.dumps(result), flush=True)
        results.append(result)
    ok = all(r.get("ok", True) for r in results)
    print(json.dumps({"summary": {r["case"]: r.get("ok", r.get("skipped")) for r in results}}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
