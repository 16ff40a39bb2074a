"""A config class's fields as argparse options, and the config a parsed command line asks for.

Each field becomes `--field-name`: its type from the annotation (int, float, str, bool as
`--x/--no-x`, `tuple[int, ...]` as `1,2,3`, each possibly `| None`), its choices from the class's
`CHOICES`, its help from the field's `help` metadata (`config.described`, `config.field_docs`) and
its default text from the class's `RECIPES`. An option not given is None: the recipe's value. The
config checks every value; `worded_as_options` words its errors as the command line says them.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import types
import typing

from gan_jax.config import field_docs


def bounded(convert, accept, what: str):
    """An argparse type: `convert(text)`, refused unless `accept(value)`; errors say `what` was
    expected."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


def int_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated non-negative integers, e.g. `20,50,100`."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated non-negative integers, got {text!r}"
        )
    return values


_NUMBERS = {
    int: bounded(int, lambda v: True, "an integer"),
    float: bounded(float, lambda v: True, "a number"),
}
# Tuple fields that also take one value under a singular name, exclusive with the list form.
_SINGULAR = {"data_seeds": ("--data-seed", "a non-negative integer", lambda v: v[0] >= 0)}


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _default_text(kind, field: dataclasses.Field) -> str:
    """' (default X)', or each recipe's value where recipes differ
    (' (default: mlp 300, conv 5)')."""
    if field.name == kind.RECIPE_FIELD:
        return f" (default {next(iter(kind.RECIPES))})"
    values = {name: recipe.get(field.name, field.default) for name, recipe in kind.RECIPES.items()}
    if field.name in kind.REQUIRED or None in values.values():
        return ""
    if len(set(map(_shown, values.values()))) == 1:
        return f" (default {_shown(next(iter(values.values())))})"
    return " (default: " + ", ".join(f"{name} {_shown(v)}" for name, v in values.items()) + ")"


def _as_options(text: str, kind) -> str:
    """`text` with each backquoted field name of `kind` written as its option
    (`batch_size` → --batch-size)."""
    for field in dataclasses.fields(kind):
        text = text.replace(f"`{field.name}`", option(field.name))
    return text


def _field_argument(kind, field: dataclasses.Field, hint, doc: str) -> dict:
    """argparse keywords for a config field: its type from the annotation, choices, help from its
    doc.

    Values are converted here and checked by the config, whose errors `worded_as_options` words as
    options.
    """
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # `int | None`: None, not given
        hint = next(t for t in typing.get_args(hint) if t is not type(None))
    text = _as_options(doc.rstrip(".") + _default_text(kind, field) + ".", kind).replace("%", "%%")
    if hint is bool:
        return dict(action=argparse.BooleanOptionalAction, default=None, help=text)
    if typing.get_origin(hint) is tuple and typing.get_args(hint) == (int, ...):
        return dict(type=int_list, default=None, metavar="N,N,...", help=text)
    if hint is str:
        choices = (
            tuple(kind.RECIPES) if field.name == kind.RECIPE_FIELD else kind.CHOICES.get(field.name)
        )
        # The only free-text fields (dataset, unlabeled) name datasets.
        return dict(
            choices=choices, default=None, help=text, metavar=None if choices else "DATASET"
        )
    if hint in _NUMBERS:
        return dict(
            type=_NUMBERS[hint], default=None, metavar="N" if hint is int else "X", help=text
        )
    raise TypeError(
        f"{kind.__name__}.{field.name}: the CLI has no option type for {hint}; use int, float, "
        "str, bool, tuple[int, ...] or one of those | None"
    )


def add_config_options(parser: argparse.ArgumentParser, kind, skip: tuple[str, ...] = ()) -> None:
    """One option per field of config class `kind` (`--batch-size` for `batch_size`), typed from its
    annotation, with its choices, its doc (`config.field_docs`) as help and the recipes' defaults.

    None (an option not given) means the recipe's value; `kind.REQUIRED` fields must be given. A
    config without a `RECIPE_FIELD` and with several recipes also gets `--recipe`.
    """
    if kind.RECIPE_FIELD is None and len(kind.RECIPES) > 1:
        described = [
            name
            + (
                " (" + " ".join(f"{option(k)} {_shown(v)}" for k, v in values.items()) + ")"
                if values
                else " (the defaults below)"
            )
            for name, values in kind.RECIPES.items()
        ]
        parser.add_argument(
            "--recipe",
            choices=tuple(kind.RECIPES),
            default=None,
            help=f"a set of defaults: {'; '.join(described)} (default {next(iter(kind.RECIPES))}); "
            "options given override it",
        )
    docs, hints = field_docs(kind), typing.get_type_hints(kind)
    for field in dataclasses.fields(kind):
        if field.name in skip:
            continue
        if field.name not in docs:
            raise TypeError(
                f"{kind.__name__}.{field.name} has no help, which the CLI shows for its option; "
                'declare it as `described(default, "what it means")`'
            )
        target: argparse._ActionsContainer = parser
        if field.name in _SINGULAR:
            target = parser.add_mutually_exclusive_group()
            singular, what, accept = _SINGULAR[field.name]
            target.add_argument(
                singular,
                dest=field.name,
                default=None,
                metavar="N",
                type=bounded(lambda t: (int(t),), accept, what),
                help=f"a single value, the same as {option(field.name)} N",
            )
        target.add_argument(
            option(field.name),
            required=field.name in kind.REQUIRED,
            **_field_argument(kind, field, hints[field.name], docs[field.name]),
        )


def given_fields(kind, args, skip: tuple[str, ...] = ()) -> dict:
    """The fields of config class `kind` that have an option in `args`, with its value (None: not
    given)."""
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(kind)
        if hasattr(args, f.name) and f.name not in skip
    }


def make_config(kind, args):
    """The config of a parsed `train` command line: the chosen recipe with the options given."""
    given = given_fields(kind, args)
    recipe = given.get(kind.RECIPE_FIELD) if kind.RECIPE_FIELD else getattr(args, "recipe", None)
    return kind.recipe(recipe, **given)


def docstring_summary(kind) -> tuple[str, str]:
    """(first sentence, first paragraph) of a config class's docstring, for a command's help."""
    paragraph = " ".join(inspect.cleandoc(kind.__doc__).split("\n\n")[0].split())
    return paragraph.split(". ")[0].rstrip("."), paragraph


def worded_as_options(message: str, kind) -> str:
    """A config error as the command line says it: its leading field name, and every field name with
    an underscore (never prose), written as the option (`learning_rate must ...` →
    `--learning-rate must ...`)."""
    words = message.split(" ", 1)
    names = {f.name for f in dataclasses.fields(kind)}
    if words[0].rstrip(":") in names:
        message = (
            option(words[0].rstrip(":"))
            + words[0][len(words[0].rstrip(":")) :]
            + (" " + words[1] if len(words) > 1 else "")
        )
    for name in sorted((n for n in names if "_" in n), key=len, reverse=True):
        message = re.sub(rf"(?<![-\w]){name}\b", option(name), message)
    return message


def add_bench_options(parser: argparse.ArgumentParser) -> None:
    """The options of `gan-jax bench` (`gan_jax.bench.main` reads them)."""
    parser.add_argument(
        "--models",
        default="dcgan,sgan",
        metavar="NAME,...",
        help="comma-separated: dcgan, sgan (default both)",
    )
    parser.add_argument(
        "--batch-sizes",
        default="64,256,1024",
        type=int_list,
        metavar="N,N,...",
        help="DCGAN batch sizes (default 64,256,1024)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        metavar="N",
        help="timed DCGAN steps per configuration (default 5 on CPU, 200 on accelerators)",
    )
    parser.add_argument(
        "--sgan-steps", type=int, default=300, metavar="N", help="timed SGAN steps (default 300)"
    )
    parser.add_argument(
        "--sgan-members",
        default="1,10",
        type=int_list,
        metavar="N,N,...",
        help="data seeds vmapped together in the SGAN rows (default 1,10)",
    )
    parser.add_argument(
        "--dtypes",
        default="float32",
        metavar="NAME,...",
        help="compute dtypes, comma-separated: float32, bfloat16",
    )
    parser.add_argument(
        "--plain", action="store_true", help="also time plain-autodiff transposed convolutions"
    )
    parser.add_argument(
        "--steps-per-call",
        type=int,
        default=None,
        metavar="N",
        help="override the per-platform choice",
    )
