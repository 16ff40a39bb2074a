"""Training-step benchmarks, one JSON line per configuration: `python -m benchmarks.run [options]`.

The same as `gan-jax bench` (see `gan_jax.bench` for what each line holds); `--help` lists the options.
"""

from __future__ import annotations

import argparse

from gan_jax.bench import main
from gan_jax.cli_options import add_bench_options
from gan_jax.errors import UserError


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    add_bench_options(parser)
    try:
        main(parser.parse_args(argv))
    except UserError as err:
        parser.error(str(err))


if __name__ == "__main__":
    run()
