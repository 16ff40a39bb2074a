"""One process of a multi-host run, supervised: library output in a log, one line when it stops.

When the environment asks for a multi-host run (`gan_jax.parallel`), `gan-jax` does not train in
the process the user started. That process becomes a small supervisor: it starts the same command
as a worker whose stdout and stderr (Gloo's connection lines, XLA's C++ logs and crash dumps,
tracebacks) go to `WORKDIR/logs/process_<id>.log`, while the worker's own messages reach the
terminal through two inherited descriptors (`GAN_JAX_TERMINAL_FDS`). When the worker ends, the
supervisor exits with its code; if it ended because a peer was lost, or crashed, the supervisor
prints one line naming the lost process, the last intact checkpoint, the command that resumes on
every host and the log, and exits with `PEER_LOST` (4).

A peer that dies is usually noticed at the next collective (Gloo's connection closes: within a
step). A peer that hangs, or dies while the others wait in a checkpoint's barrier, is noticed by
JAX's coordination service after `GAN_JAX_PEER_TIMEOUT` seconds without heartbeats (default 30;
`peer_timeout`). Every surviving process therefore stops within that time plus a few seconds
(measured: benchmarks/results/multiprocess_cpu.md), and its checkpoints stay intact
(Orbax finishes a step's folder by renaming it, so a save cut short is never the latest).
"""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import signal
import subprocess
import sys
import time
import traceback

PEER_LOST = 4  # exit code: a peer process was lost (or this worker crashed); resume to continue
CRASHED = 70  # a worker's own exit code for an exception it did not expect (details in its log)
WORKER_ENV = "GAN_JAX_WORKER"  # set in a worker: it trains, it does not supervise
TERMINAL_ENV = "GAN_JAX_TERMINAL_FDS"  # "OUT,ERR": the worker's descriptors to the user's terminal
RESUME_ENV = "GAN_JAX_RESUME_COMMAND"  # the command to name in the stop line (set by `launch`)
PEER_TIMEOUT_ENV = "GAN_JAX_PEER_TIMEOUT"
DEFAULT_PEER_TIMEOUT = 30
HEADER = "=== gan-jax worker started"  # opens each run's part of a log (runs append to it)
# A worker's exit codes that it explained itself: done, user error, diverged, Ctrl-C, SIGTERM.
SELF_REPORTED = (0, 2, 3, 130, 143)


def peer_timeout() -> int:
    """Seconds without a peer's heartbeat after which the run stops (`$GAN_JAX_PEER_TIMEOUT`)."""
    from gan_jax.errors import ConfigError

    value = os.environ.get(PEER_TIMEOUT_ENV, "")
    if not value:
        return DEFAULT_PEER_TIMEOUT
    if not value.isdigit() or int(value) < 2:
        raise ConfigError(f"{PEER_TIMEOUT_ENV} must be an integer >= 2 (seconds), got {value!r}")
    return int(value)


def requested() -> bool:
    """Whether the environment asks for a multi-host run (see `gan_jax.parallel`)."""
    return bool(os.environ.get("JAX_COORDINATOR_ADDRESS")) or (
        os.environ.get("GAN_JAX_DISTRIBUTED", "").lower() == "auto"
    )


def process_name() -> str:
    """This process's index as the environment gives it (JAX, SLURM, Open MPI), else host-pid."""
    for env in ("JAX_PROCESS_ID", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK"):
        if os.environ.get(env, "").isdigit():
            return os.environ[env]
    return f"{os.uname().nodename}-{os.getpid()}"


def process_count() -> int:
    """The run's process count as the environment gives it (JAX, SLURM, Open MPI); 0: unknown."""
    for env in (
        "JAX_NUM_PROCESSES",
        "SLURM_STEP_NUM_TASKS",
        "SLURM_NTASKS",
        "OMPI_COMM_WORLD_SIZE",
    ):
        if os.environ.get(env, "").isdigit():
            return int(os.environ[env])
    return 0


def log_path(folder: pathlib.Path, name: str) -> pathlib.Path:
    return folder / "logs" / f"process_{name}.log"


def start_worker(
    argv: list[str],
    log: pathlib.Path,
    env: dict[str, str],
    out: int = 1,
    err: int = 2,
    new_session: bool = False,
) -> subprocess.Popen:
    """Starts `gan-jax ARGV` as a worker: stdout/stderr appended to `log`, its own messages to
    the descriptors `out` and `err`; it is killed when this process dies (Linux)."""
    from gan_jax.errors import ConfigError

    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        sink = open(log, "ab")  # noqa: SIM115 (closed below, once the worker holds it)
    except OSError as error:
        raise ConfigError(
            f"cannot write {log} ({error.strerror}); pass a writable --workdir"
        ) from None
    with sink:
        sink.write(f"{HEADER} {time.strftime('%Y-%m-%d %H:%M:%S')}: {shlex.join(argv)}\n".encode())
        sink.flush()
        return subprocess.Popen(
            [sys.executable, "-m", "gan_jax.cli", *argv],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            env={**env, WORKER_ENV: str(log), TERMINAL_ENV: f"{out},{err}"},
            pass_fds=(out, err),
            preexec_fn=_die_with_parent,
            start_new_session=new_session,
        )


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def supervise(argv: list[str], folder: pathlib.Path) -> int:
    """Runs `gan-jax ARGV` as this host's worker and returns the exit code (see the module
    docstring); SIGTERM and SIGHUP are passed on to it (Ctrl-C reaches it from the terminal)."""
    name = process_name()
    log = log_path(folder, name)
    out, err = os.dup(1), os.dup(2)  # the terminal, under numbers the worker's 1 and 2 leave alone
    worker = start_worker(argv, log, dict(os.environ), out, err)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda s, _f: worker.send_signal(s))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code = worker.wait()
    line = stop_line(code, log, name, folder, resume_command(argv))
    if line is not None:
        print(f"gan-jax: {line}", file=sys.stderr, flush=True)
    return exit_code(code)


def exit_code(code: int) -> int:
    """What a supervisor exits with for its worker's `code`: the worker's own codes as they are,
    PEER_LOST for a lost peer or a crash, 128 + N for a signal N."""
    if code in SELF_REPORTED:
        return code
    return 128 - code if code < 0 and code != -signal.SIGABRT else PEER_LOST


def resume_command(argv: list[str]) -> str:
    return os.environ.get(RESUME_ENV) or shlex.join(["gan-jax", *argv])


def stop_line(
    code: int,
    log: pathlib.Path,
    name: str,
    folder: pathlib.Path,
    command: str,
    peers: str | None = None,
    count: int | None = None,
) -> str | None:
    """The one line saying why worker `name` stopped, or None when it said so itself (0 done,
    2 user error, 3 diverged, 130/143 signals)."""
    if code in SELF_REPORTED:
        return None
    from gan_jax.checkpoint import CheckpointStore

    text = log.read_text(errors="replace").rsplit(HEADER, 1)[-1] if log.exists() else ""
    step = CheckpointStore.latest_in(folder)
    saved = f"step {step} in {folder / 'checkpoints'}" if step is not None else "none yet"
    resume = f"last intact checkpoint: {saved}; to resume, run on every host: {command}"
    lost = lost_peer(text, name, peers, count)
    if code < 0 and code != -signal.SIGABRT:
        what = f"was killed ({signal.Signals(-code).name})"
    elif lost:
        what = f"stopped: lost {lost}"
    else:
        last = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("    @")]
        what = f"crashed (exit {code}: {last[-1][:160] if last else 'no output'})"
    return f"process {name} {what}; {resume}; details in {log}"


def lost_peer(
    text: str, name: str, peers: str | None = None, count: int | None = None
) -> str | None:
    """'process K ...' when `text`, worker `name`'s log, says a peer was lost; `peers` names the
    lost one when the caller knows (`launch`), else it is read from the log or, of 2, the other."""
    dead = re.search(r"Task (\d+) heartbeat timeout", text) or re.search(
        r"stopped sending heartbeats\):\s*(\d+)", text
    )
    if dead:
        return f"process {dead.group(1)} (no heartbeat)"
    if re.search(
        r"Connection (closed by peer|reset by peer|refused)|Broken pipe|Socket closed", text
    ):
        count = count or process_count()
        pair = count == 2 and name in ("0", "1")
        peer = peers or (f"process {1 - int(name)}" if pair else "a peer process")
        return f"{peer} (its connection closed)"
    if re.search(r"coordination service|DEADLINE_EXCEEDED|UNAVAILABLE", text):
        return "contact with the coordinator (process 0)"
    return None


def is_worker() -> bool:
    return bool(os.environ.get(WORKER_ENV)) and bool(os.environ.get(TERMINAL_ENV))


def enter_worker() -> bool:
    """In a worker: point `sys.stdout`/`sys.stderr` at the terminal's descriptors, leaving fds
    1 and 2 (where C++ libraries write) on the log. Returns whether this is a worker."""
    if not is_worker():
        return False
    out, err = (int(fd) for fd in os.environ[TERMINAL_ENV].split(","))
    sys.stdout = open(out, "w", buffering=1, closefd=False)  # noqa: SIM115 (lives as long as the process)
    sys.stderr = open(err, "w", buffering=1, closefd=False)  # noqa: SIM115
    return True


def exit_worker(code: int, crash: BaseException | None = None) -> None:
    """Ends a worker that did not finish: the traceback (if any) goes to the log, and the process
    exits at once, skipping JAX's shutdown barrier (which would wait for the lost peer)."""
    if crash is not None:
        traceback.print_exception(crash, file=sys.__stderr__)
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    os._exit(code)
