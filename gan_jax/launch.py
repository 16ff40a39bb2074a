"""`gan-jax launch --processes N [--port P] -- COMMAND`: a multi-host run's N processes on this
machine, for testing (on a cluster, start one `gan-jax COMMAND` per host instead:
docs/multihost.md).

Each process is a supervised worker (`gan_jax.multihost`) with `JAX_COORDINATOR_ADDRESS`
(127.0.0.1 and a free port), `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID` set; its library output
goes to `WORKDIR/logs/process_<i>.log` and its own lines reach the terminal prefixed `[i]`. When
one process fails, the others stop by themselves within `GAN_JAX_PEER_TIMEOUT` seconds (default
30); any still running 10 s later are killed. Each stopped process prints one line; the exit code
is 0 when all finished, else the first failure's (`gan_jax.multihost.exit_code`).
"""

from __future__ import annotations

import os
import pathlib
import shlex
import signal
import socket
import sys
import threading
import time

from gan_jax import multihost
from gan_jax.errors import ConfigError

GRACE_S = 10  # beyond the peer timeout, before a process that has not stopped is killed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def output_folder(argv: list[str]) -> pathlib.Path:
    """The command's --workdir (or --out) folder, where the processes' logs go."""
    for i, arg in enumerate(argv):
        for flag in ("--workdir", "--out"):
            if arg == flag and i + 1 < len(argv):
                return pathlib.Path(argv[i + 1])
            if arg.startswith(flag + "="):
                return pathlib.Path(arg.split("=", 1)[1])
    raise ConfigError("launch needs a command with --workdir DIR (or --out DIR) for its logs")


def _forward(pipe: int, prefix: str, stream) -> None:
    with open(pipe, "rb") as lines:
        for line in lines:
            stream.write(prefix + line.decode(errors="replace"))
            stream.flush()


def launch(processes: int, argv: list[str], port: int | None = None) -> int:
    """Runs `gan-jax ARGV` as `processes` local processes of one run; returns the exit code."""
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise ConfigError("launch needs a command after `--`, e.g. -- train gan --workdir DIR")
    folder = output_folder(argv)
    timeout = multihost.peer_timeout()
    address = f"127.0.0.1:{port or free_port()}"
    resume = shlex.join(["gan-jax", "launch", "--processes", str(processes), "--", *argv])
    workers, threads = [], []
    for i in range(processes):
        env = {
            **os.environ,
            "JAX_COORDINATOR_ADDRESS": address,
            "JAX_NUM_PROCESSES": str(processes),
            "JAX_PROCESS_ID": str(i),
            multihost.RESUME_ENV: resume,
        }
        pipes = [os.pipe(), os.pipe()]
        log = multihost.log_path(folder, str(i))
        workers.append(multihost.start_worker(argv, log, env, pipes[0][1], pipes[1][1], True))
        for (read, write), stream in zip(pipes, (sys.stdout, sys.stderr), strict=True):
            os.close(write)
            thread = threading.Thread(target=_forward, args=(read, f"[{i}] ", stream), daemon=True)
            thread.start()
            threads.append(thread)

    def pass_on(signum, _frame):
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, pass_on)
    try:
        codes = _wait(workers, folder, resume, timeout)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for thread in threads:
        thread.join(timeout=5)
    failed = [code for code in codes if code != 0]
    return multihost.exit_code(failed[0]) if failed else 0


def _wait(workers, folder: pathlib.Path, resume: str, timeout: int) -> list[int]:
    """Waits for every worker, printing each failed one's line; kills those still running
    `timeout + GRACE_S` seconds after the first failure."""
    codes: list[int | None] = [None] * len(workers)
    first: int | None = None
    deadline = float("inf")
    while None in codes:
        ended = [i for i, w in enumerate(workers) if codes[i] is None and w.poll() is not None]
        for i in sorted(ended, key=lambda i: workers[i].returncode >= 0):  # the killed first
            codes[i] = code = workers[i].returncode
            peers = f"process {first}" if first is not None else None
            log = multihost.log_path(folder, str(i))
            line = multihost.stop_line(code, log, str(i), folder, resume, peers, len(workers))
            if line:
                print(f"[{i}] gan-jax: {line}", file=sys.stderr, flush=True)
            if code != 0 and first is None:
                first, deadline = i, time.monotonic() + timeout + GRACE_S
        if time.monotonic() > deadline:
            for i, worker in enumerate(workers):
                if codes[i] is None:
                    worker.kill()
                    codes[i] = worker.wait()
                    print(
                        f"[{i}] gan-jax: process {i} did not stop within {timeout + GRACE_S} s "
                        f"of process {first}'s failure; killed it",
                        file=sys.stderr,
                        flush=True,
                    )
        time.sleep(0.1)
    return [code for code in codes if code is not None]
