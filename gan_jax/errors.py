"""The one exception family for user mistakes.

The CLI turns any `UserError` into a one-line message and exit code 2; the Python API raises
it as is. Everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem the user can fix: the message names the problem and the fix."""


class ConfigError(UserError, ValueError):
    """An invalid option or configuration value."""


class DataError(UserError):
    """MNIST could not be loaded from any route, or the given arrays are malformed."""


class CheckpointError(UserError):
    """A workdir whose checkpoints cannot be used for the requested run."""


class TrainingStopped(Exception):
    """Training ended early on purpose; `exit_code` is what the CLI exits with."""

    exit_code = 1


class Preempted(TrainingStopped):
    """SIGTERM or Ctrl-C: the current compiled call finished and a checkpoint was saved."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class Diverged(TrainingStopped):
    """A loss or parameter became NaN/Inf; the bad state was not saved."""

    exit_code = 3
