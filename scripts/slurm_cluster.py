"""A single-node SLURM cluster on this machine, for trying and testing the multi-host recipe.

    python -m scripts.slurm_cluster start DIR   # prints `export SLURM_CONF=DIR/slurm.conf`
    python -m scripts.slurm_cluster stop DIR    # stops every daemon `start` started, by PID
    python -m scripts.slurm_cluster install     # only installs the packages (what .ci/run does)

Uses Debian's packages (`slurmctld slurmd slurm-client munge`), installing them with apt-get when
they are missing and this is root. `start` writes a config into DIR (state, spool, logs and PID
files stay there), starts munged (unless one answers already), slurmctld and slurmd, and returns
once the node is idle. `SLURM_CONF` must point at DIR/slurm.conf for `srun`, `sbatch`, `squeue`
and `scancel` to find this cluster. The tests use `cluster(DIR)`, which stops it at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
PIDS = "daemons.pid"  # in DIR: one "name pid" line per daemon started
READY_S = 30


class Unavailable(RuntimeError):
    """SLURM cannot start here; the message says why in one line."""


def config_text(folder: pathlib.Path, host: str, cpus: int) -> str:
    """slurm.conf for one node named `host` with `cpus` CPUs, everything kept under `folder`."""
    return "\n".join(
        [
            "ClusterName=gan-jax-local",
            f"SlurmctldHost={host}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            # A requeued job waits out its old credentials' lifetime before it starts again
            # (default 120 s; slurmd refuses a start inside it: "Job credential revoked").
            "AuthInfo=cred_expire=10",
            "SchedulerParameters=bf_interval=5",  # the backfill pass that starts it: every 5 s
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "MpiDefault=none",
            "MailProg=/bin/true",
            "ReturnToService=2",
            "KillWait=30",  # seconds between a time limit's SIGTERM and its SIGKILL
            "JobRequeue=1",
            f"StateSaveLocation={folder / 'state'}",
            f"SlurmdSpoolDir={folder / 'spool'}",
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
            f"SlurmdPidFile={folder / 'slurmd.pid'}",
            f"SlurmctldLogFile={folder / 'slurmctld.log'}",
            f"SlurmdLogFile={folder / 'slurmd.log'}",
            f"NodeName={host} CPUs={cpus} State=UNKNOWN",
            "PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES",
            "",
        ]
    )


def install() -> None:
    """apt-get installs the packages when a daemon is missing (as root); else `Unavailable`."""
    if all(
        shutil.which(name, path="/usr/sbin:/usr/bin")
        for name in ("slurmctld", "slurmd", "munged", "srun")
    ):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Unavailable(
            "SLURM is not installed and this is not root on Debian; run: "
            "apt-get install " + " ".join(PACKAGES)
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise Unavailable(f"`{' '.join(command)}` failed ({last})")


def _munge_answers() -> bool:
    try:
        token = subprocess.run(["munge", "-n"], capture_output=True, timeout=5)
        if token.returncode != 0:
            return False
        check = subprocess.run(["unmunge"], input=token.stdout, capture_output=True, timeout=5)
        return check.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _start_munge(folder: pathlib.Path) -> subprocess.Popen | None:
    if _munge_answers():
        return None
    if not pathlib.Path("/etc/munge/munge.key").exists():
        subprocess.run(["mungekey", "--create"], check=True, capture_output=True)
        shutil.chown("/etc/munge/munge.key", "munge", "munge")
    run = pathlib.Path("/run/munge")
    run.mkdir(parents=True, exist_ok=True)
    shutil.chown(run, "munge", "munge")
    daemon = subprocess.Popen(
        ["runuser", "-u", "munge", "--", "munged", "--foreground"],
        stdout=open(folder / "munged.log", "ab"),  # noqa: SIM115 (the daemon holds it)
        stderr=subprocess.STDOUT,
    )
    _wait_until(_munge_answers, "munged does not answer")
    return daemon


def _wait_until(ready, what: str) -> None:
    deadline = time.monotonic() + READY_S
    while not ready():
        if time.monotonic() > deadline:
            raise Unavailable(f"{what} after {READY_S} s")
        time.sleep(0.2)


def _node_idle(env: dict[str, str]) -> bool:
    done = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.split() == ["idle"]


def environment(folder: pathlib.Path) -> dict[str, str]:
    """This process's environment with `SLURM_CONF` pointing at the cluster in `folder`."""
    return {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}


def start(folder: str | os.PathLike) -> dict[str, str]:
    """Starts the cluster in `folder` (see the module docstring); returns `environment(folder)`.

    Raises:
      Unavailable: it cannot start here (not installed and cannot install, a daemon failed).
    """
    folder = pathlib.Path(folder).resolve()
    install()
    for sub in ("state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    (folder / "slurm.conf").write_text(config_text(folder, host, os.cpu_count() or 1))
    env = environment(folder)
    started: list[tuple[str, subprocess.Popen]] = []
    try:
        munged = _start_munge(folder)
        if munged is not None:
            started.append(("munged", munged))
        for name in ("slurmctld", "slurmd"):
            log = open(folder / f"{name}.out", "ab")  # noqa: SIM115 (the daemon holds it)
            daemon = subprocess.Popen(
                [name, "-D", "-f", str(folder / "slurm.conf")], env=env, stdout=log, stderr=log
            )
            started.append((name, daemon))
        (folder / PIDS).write_text("".join(f"{n} {p.pid}\n" for n, p in started))
        _wait_until(lambda: _node_idle(env), f"the node is not idle (see {folder}/*.log)")
    except (Unavailable, OSError, subprocess.CalledProcessError) as err:
        stop(folder)
        raise Unavailable(f"SLURM did not start: {err}") from None
    return env


def stop(folder: str | os.PathLike) -> None:
    """Stops the daemons `start` started in `folder` (SIGTERM, then SIGKILL after 10 s)."""
    pids = pathlib.Path(folder) / PIDS
    if not pids.exists():
        return
    for line in reversed(pids.read_text().splitlines()):
        pid = int(line.split()[1])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 15)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, 9)
    pids.unlink()


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reaps it when it is our child
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def cluster(folder: str | os.PathLike):
    """`start(folder)` … `stop(folder)`: yields the environment for `srun`/`sbatch`."""
    env = start(folder)
    try:
        yield env
    finally:
        stop(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("start", "stop", "install"))
    parser.add_argument("folder", type=pathlib.Path, nargs="?", default=pathlib.Path("slurm"))
    args = parser.parse_args(argv)
    if args.action == "stop":
        stop(args.folder)
        return 0
    try:
        if args.action == "install":
            install()
            return 0
        start(args.folder)
    except Unavailable as err:
        print(f"slurm_cluster: {err}", file=sys.stderr)
        return 1
    print(f"export SLURM_CONF={args.folder.resolve() / 'slurm.conf'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
