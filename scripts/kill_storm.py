"""Kill one `gan-jax train` run with SIGKILL again and again, inside asynchronous saves too.

    python -m scripts.kill_storm --kills 20 [--steps 60] [--seed 0] [--root DIR]

A reference run trains a tiny DCGAN for `--steps` steps on MNIST with a checkpoint every step. The
storm runs the same command in one workdir and SIGKILLs it `--kills` times in sequence (kill,
check, resume, kill again...), then lets it finish. Each kill lands at one of three moments:

- `in_save`: once a checkpoint a step or two past the resume point exists, at the moment a new
  Orbax temporary folder (`<step>.orbax-checkpoint-tmp-*`) appears, plus 0-10 ms: inside an
  asynchronous save;
- `after_step`: 0-0.3 s after a checkpoint a step or two past the resume point appears (inside a
  step, a save or the metrics rows);
- `startup`: 0.5-4 s after the process starts (while importing, compiling or restoring).

After every kill, before resuming, it checks that the checkpoint a store would restore is the newest
`checkpoints/<step>` folder, has its commit marker (`commit_success.txt`), restores and matches its
checksum (`CheckpointStore.restore`); it counts the temporary folders left behind (evidence that the
kill landed inside a save) and the older folders left partly deleted (a kill while Orbax removed a
checkpoint beyond `--keep-checkpoints`). Each resume must log `resuming W from
step S` with S that latest intact step, and no damaged-checkpoint warning. At the end
`params_sha256` (`gan-jax info`), metrics.jsonl and losses.jsonl must equal the reference's.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import re
import subprocess
import sys
import tempfile
import time

from gan_jax.api import run_info
from gan_jax.checkpoint import CheckpointStore
from gan_jax.tasks import config_from_dict, make_task
from scripts.kill_resume_check import checkpointed_command

ROWS = ("metrics.jsonl", "losses.jsonl")
TMP_MARK = ".orbax-checkpoint-tmp"


def step_folders(workdir: pathlib.Path) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
    """(complete-looking `checkpoints/<step>` folders, Orbax temporary folders) in `workdir`."""
    directory = workdir / "checkpoints"
    if not directory.is_dir():
        return [], []
    entries = list(directory.iterdir())
    return (
        [p for p in entries if p.is_dir() and p.name.isdigit()],
        [p for p in entries if TMP_MARK in p.name],
    )


def check_intact(workdir: pathlib.Path) -> dict:
    """What a resume would start from: the latest step, whether every step folder is committed,
    and whether the latest restores and verifies. Reads only."""
    steps, tmp = step_folders(workdir)
    # A kill while Orbax deletes the oldest checkpoint (beyond --keep-checkpoints) leaves it partly
    # deleted, without its marker: allowed while it is not the latest, which would be restored.
    uncommitted = sorted(int(p.name) for p in steps if not (p / "commit_success.txt").is_file())
    report = {"tmp_left": len(tmp), "uncommitted": uncommitted, "latest": None, "restores": None}
    if not steps:
        return report
    with CheckpointStore(workdir, create=False) as store:
        latest = store.latest_step()
        report["latest"] = latest
        report["latest_is_newest_folder"] = latest == max(int(p.name) for p in steps)
        report["latest_committed"] = latest not in uncommitted
        task = make_task(config_from_dict(store.read_config(latest)))
        try:
            state, _ = store.restore(task.init(), latest)  # raises unless it verifies
            report["restores"] = int(state.step) == latest
        except Exception as err:  # noqa: BLE001 - reported, the storm goes on
            report["restores"] = False
            report["error"] = str(err)[:200]
    return report


def kill_moment(
    proc: subprocess.Popen, workdir: pathlib.Path, mode: str, target: int, rng: random.Random
) -> bool:
    """Waits for the kill moment of `mode` (see the module docstring); False if the run ended
    first."""
    deadline = time.time() + 300
    if mode == "startup":
        time.sleep(rng.uniform(0.5, 4.0))
        return proc.poll() is None
    while (CheckpointStore.latest_in(workdir) or 0) < target:
        if proc.poll() is not None or time.time() > deadline:
            return False
        time.sleep(0.005)
    if mode == "after_step":
        time.sleep(rng.uniform(0.0, 0.3))
        return proc.poll() is None
    while not step_folders(workdir)[1]:  # in_save: a temporary folder appears
        if proc.poll() is not None or time.time() > deadline:
            return False
        time.sleep(0.001)
    time.sleep(rng.uniform(0.0, 0.01))
    return proc.poll() is None


def resumed_from(stderr: str, workdir: pathlib.Path) -> int | None:
    match = re.search(rf"resuming {re.escape(str(workdir))} from step (\d+)", stderr)
    return int(match.group(1)) if match else None


def storm(kills: int, steps: int = 60, seed: int = 0, root: pathlib.Path | None = None) -> dict:
    """Runs the reference and the storm under `root` (default a new temporary folder); returns the
    JSON-ready report (`ok` says whether every check passed)."""
    root = pathlib.Path(root or tempfile.mkdtemp(prefix="kill_storm_"))
    reference, workdir = root / "reference", root / "storm"
    subprocess.run(
        checkpointed_command(reference, steps), check=True, capture_output=True, timeout=600
    )
    expected = run_info(reference)["params_sha256"]
    rng = random.Random(seed)
    cmd = checkpointed_command(workdir, steps)
    details: list[dict] = []
    expected_start, started = 0, time.time()
    for _ in range(kills):
        mode = rng.choices(["in_save", "after_step", "startup"], weights=[5, 3, 2])[0]
        target = (CheckpointStore.latest_in(workdir) or 0) + rng.randint(1, 2)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            alive = kill_moment(proc, workdir, mode, target, rng)
        finally:
            proc.kill()
            _, err = proc.communicate(timeout=60)
        if not alive:  # finished (or failed) before the kill: the storm needs more --steps
            details.append({"mode": mode, "ended_before_kill": True, "returncode": proc.returncode})
            break
        intact = check_intact(workdir)
        start = resumed_from(err, workdir)
        reached = f"training {workdir} from step" in err  # past the restore before the kill
        details.append(
            {
                "mode": mode,
                "resumed_from": start,
                "resume_ok": (start == (expected_start or None) or (start is None and not reached))
                and "trying the previous" not in err,
                **intact,
            }
        )
        expected_start = intact["latest"] or 0
    final = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    final_ok = final.returncode == 0 and resumed_from(final.stderr, workdir) == (
        expected_start or None
    )
    same_params = run_info(workdir)["params_sha256"] == expected
    same_rows = all((workdir / n).read_text() == (reference / n).read_text() for n in ROWS)
    done = [d for d in details if not d.get("ended_before_kill")]
    checks_ok = all(
        d["resume_ok"]
        and d["restores"] is not False
        and d.get("latest_is_newest_folder", True)
        and d.get("latest_committed", True)
        for d in done
    )
    return {
        "kills": len(done),
        "asked_kills": kills,
        "steps": steps,
        "seed": seed,
        "kills_by_mode": {
            m: sum(d["mode"] == m for d in done) for m in ("in_save", "after_step", "startup")
        },
        "kills_leaving_a_tmp_folder": sum(d["tmp_left"] > 0 for d in done),
        "kills_leaving_a_partly_deleted_older_folder": sum(bool(d["uncommitted"]) for d in done),
        "every_resume_from_intact_latest": checks_ok and final_ok,
        "params_bit_exact": same_params,
        "rows_equal": same_rows,
        "ok": len(done) == kills and checks_ok and final_ok and same_params and same_rows,
        "seconds": round(time.time() - started, 1),
        "details": details,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=pathlib.Path, default=None)
    args = parser.parse_args(argv)
    result = storm(args.kills, args.steps, args.seed, args.root)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
