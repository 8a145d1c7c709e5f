"""Command-line options derived from the settings classes (mdrl.specs, mdrl.train.config, ...).

One mechanism for every command (`data build`, `train`, `eval run`, `serve`, `study`):
  * `spec_option(Cls, "field")`: the option that sets one field; its flag (`--format-weight` for
    `format_weight`), help and shown default are the field's, its value None when not given, so the
    settings class keeps its own default;
  * `set_option()`: repeatable `--set KEY=VALUE` (dotted keys, values read as YAML) over every field;
  * `resolve(...)`: the settings a command runs with: a config mapping, then the options given, then
    `--set`, built and checked by the settings class (a bad value is a usage error naming the key);
  * `list_options_option(...)`: `--list-options`, every field with its default and help.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import typer

from mdrl.specs import apply_overrides, build_settings, describe_options, field_help, set_values

SET_HELP = "Repeatable KEY=VALUE over any setting (dotted keys, value read as YAML)"


def _field(cls: type, name: str) -> dataclasses.Field:
    for item in dataclasses.fields(cls):
        if item.name == name:
            return item
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def flag_of(name: str) -> str:
    """The command-line spelling of a field: format_weight -> --format-weight."""
    return "--" + name.replace("_", "-")


def _shown_default(item: dataclasses.Field, flags: Sequence[str]) -> str | bool:
    if item.default is not dataclasses.MISSING:
        value = item.default
    elif item.default_factory is not dataclasses.MISSING:
        value = item.default_factory()
    else:
        return False
    if value is None or value == () or value == {} or value == "":
        return False
    if isinstance(value, bool):
        paired = next((flag for flag in flags if "/" in flag), None)
        if paired is None:
            return "on" if value else "off"
        positive, negative = paired.split("/", 1)
        return (positive if value else negative).lstrip("-")
    return str(value)


def spec_option(cls: type, name: str, *flags: str, prefix: str = "", note: str = "",
                show_default: str | bool = True, **kwargs: Any) -> Any:
    """A typer option for field `name` of settings class `cls`: help `prefix + field help + note`, then
    the field's default (or `show_default` when a string; nothing when False). Its value is None unless
    given, so the settings class (or a config file under the options) decides the rest. `flags` add
    short or paired spellings; the long flag is the field's name unless one is given."""
    item = _field(cls, name)
    decls = list(flags)
    if not any(flag.startswith("--") for flag in decls):
        decls.insert(0, flag_of(name))
    text = prefix + field_help(cls, name) + (f" {note}" if note else "")
    shown = show_default if isinstance(show_default, str) else show_default and _shown_default(item, decls)
    if shown:  # in the help text: click would print a string default in parentheses
        text += f"  [default: {shown}]"
    option = typer.Option(None, *decls, help=text, show_default=False, **kwargs)
    option.mdrl_field = (cls, name)  # which field the option sets (tests compare help and reach)
    return option


def set_option(example: str, *flags: str) -> Any:
    """The repeatable `--set KEY=VALUE` option (`flags`: a short spelling); `example` shows a key."""
    return typer.Option(None, "--set", *flags,
                        help=f"{SET_HELP}, e.g. --set {example}. Applied after the other options.")


def list_options_option(*sections: tuple[str, type]) -> Any:
    """`--list-options`: print every setting (dotted name, default, help) of the (prefix, class) sections
    and exit, before any other option is checked (so required options need not be given)."""

    def show(value: bool) -> None:
        if not value:
            return
        for prefix, cls in sections:
            for key, shown, text in describe_options(cls, prefix):
                typer.echo(f"{key:<42} {shown:<22} {text}")
        raise typer.Exit()

    return typer.Option(False, "--list-options", is_eager=True, expose_value=False, callback=show,
                        help="List every setting (--set KEY) with its default and help, and exit.")


def resolve(cls: type, options: Mapping[str, Any], overrides: Sequence[str] | None = (),
            base: Mapping[str, Any] | None = None,
            build: Callable[[Mapping[str, Any]], Any] | None = None) -> Any:
    """The settings a command runs with: `base` (a config file), then the `options` given on the command
    line (dotted keys; None means not given), then the `--set` overrides, built by `build` (default:
    the typed `build_settings(cls, ...)`). A bad key or value is a typer.BadParameter naming it."""
    data = set_values(dict(base or {}), {key: value for key, value in options.items() if value is not None})
    try:
        data = apply_overrides(data, overrides or ())
        return build(data) if build is not None else build_settings(cls, data)
    except (KeyError, TypeError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise typer.BadParameter(str(message)) from None
