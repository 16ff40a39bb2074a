"""Statements of the documentation that the code decides, checked against it so they never drift."""

import argparse
import dataclasses
import pathlib

RELIABILITY = pathlib.Path(__file__).parent.parent / "docs" / "reliability.md"  # the resume section


def _reliability() -> str:
    return " ".join(RELIABILITY.read_text().split())


def _listed(options) -> str:
    return ", ".join(f"`{o}`" for o in options)


def test_the_resume_section_lists_exactly_the_options_that_may_change_between_runs():
    from gan_jax.cli import build_parser
    from gan_jax.cli_options import option
    from gan_jax.config import RunConfig
    from gan_jax.tasks import TASKS

    common = RunConfig.RESUMABLE_FIELDS
    extras: dict[tuple[str, ...], list[str]] = {}
    for name, task in TASKS.items():
        fields = task.config_type.RESUMABLE_FIELDS
        assert set(common) <= set(fields), name
        extra = tuple(f for f in fields if f not in common)
        if extra:
            extras.setdefault(extra, []).append(name)
    stored = (
        "every task: "
        + _listed(map(option, common))
        + "".join(
            f"; {', '.join(names)} also: {_listed(map(option, extra))}"
            for extra, names in extras.items()
        )
        + "."
    )
    assert stored in _reliability(), stored

    parsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    tasks = next(
        a for a in parsers.choices["train"]._actions if isinstance(a, argparse._SubParsersAction)
    )
    for name, task in TASKS.items():
        fields = {f.name for f in dataclasses.fields(task.config_type)} | {
            "workdir",
            "recipe",
            "help",
        }
        unstored = [
            a.option_strings[0] for a in tasks.choices[name]._actions if a.dest not in fields
        ]
        sentence = "The options that are not stored may change too: " + _listed(unstored) + "."
        assert sentence in _reliability(), sentence
