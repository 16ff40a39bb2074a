"""The `gan_jax` logger: progress lines written above the progress bar, quiet on request.

`gan_jax.setup_process()` (which the CLI calls) gives its logger one handler that prints each
record through `tqdm.write` (so a line never lands inside a progress bar) on the `sys.stderr` of
the moment, at INFO, so that `gan_jax.train(...)` in a notebook prints the same epoch lines as
`gan-jax train`. Importing `gan_jax` alone adds no handler. To quiet it:
`logging.getLogger("gan_jax").setLevel(logging.WARNING)`; to route it through your own logging
set-up instead: `gan_jax.logs.use_standard_logging()`.
"""

from __future__ import annotations

import logging
import sys

from tqdm.auto import tqdm

log = logging.getLogger("gan_jax")


class ProgressBarHandler(logging.Handler):
    """Writes each record on its own line above any running tqdm bar, to `sys.stderr`."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging's contract: report, never raise
            self.handleError(record)


def install_default_handler() -> None:
    """Gives the `gan_jax` logger its line-above-the-bar handler at INFO (idempotent).

    Leaves a level the caller already set alone, and stops propagation so that a root handler
    (absl installs one) does not print every line twice.
    """
    if not any(isinstance(h, ProgressBarHandler) for h in log.handlers):
        handler = ProgressBarHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)


def use_standard_logging() -> None:
    """Removes gan_jax's own handler: records then propagate to the caller's logging handlers."""
    for handler in [h for h in log.handlers if isinstance(h, ProgressBarHandler)]:
        log.removeHandler(handler)
    log.propagate = True
