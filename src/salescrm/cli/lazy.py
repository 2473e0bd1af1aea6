"""Build only the part of the command tree a run needs.

Typer turns every registered command into a Click command before running
any of them, and that costs time per command (it inspects and evaluates each
function's annotations): with a hundred commands it dominated start-up.
``pruned(app, argv)`` returns a shallow copy of the app holding only the
group and command that ``argv`` names — or, for root help and the
dashboard, every group with its commands left out (their one-line help is
all that is shown).  Nothing is pruned at a level where the name is not
recognised, so errors and suggestions are the same as with the full tree.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import typer

#: Root options that take a value (their value is not a command name).
_ROOT_VALUE_OPTIONS = {"--db"}


def _command_name(info) -> str:
    if info.name:
        return info.name
    return info.callback.__name__.replace("_", "-")


def _group_name(info) -> str | None:
    name = info.name
    if isinstance(name, str):
        return name
    sub = info.typer_instance
    inner = getattr(sub.info, "name", None) if sub is not None else None
    return inner if isinstance(inner, str) else None


def _positionals(argv: Sequence[str], value_options: set[str]) -> list[str]:
    """The leading non-option words of argv (stops at '--')."""
    words, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--":
            break
        if arg.startswith("-"):
            if arg in value_options:
                skip = True
            continue
        words.append(arg)
    return words


def _copy_app(app: typer.Typer, groups: list, commands: list) -> typer.Typer:
    new = copy.copy(app)
    new.registered_groups = groups
    new.registered_commands = commands
    return new


def _copy_group(info, sub_app: typer.Typer):
    new = copy.copy(info)
    new.typer_instance = sub_app
    return new


def pruned(app: typer.Typer, argv: Sequence[str]) -> typer.Typer:
    words = _positionals(argv, _ROOT_VALUE_OPTIONS)
    first = words[0] if words else None
    groups = {(_group_name(g)): g for g in app.registered_groups}
    commands = {_command_name(c): c for c in app.registered_commands}
    if first in commands:
        return _copy_app(app, [], [commands[first]])
    if first in groups:
        group = groups[first]
        sub = group.typer_instance
        second = words[1] if len(words) > 1 else None
        sub_commands = {_command_name(c): c for c in sub.registered_commands}
        sub_groups = {_group_name(g): g for g in sub.registered_groups}
        if second in sub_commands:
            sub = _copy_app(sub, [], [sub_commands[second]])
        elif second in sub_groups:
            sub = _copy_app(sub, [sub_groups[second]], [])
        return _copy_app(app, [_copy_group(group, sub)], [])
    if first is None:
        # root help or the dashboard: groups are listed by their one-line help only
        empty = [_copy_group(g, _copy_app(g.typer_instance, [], [])) for g in app.registered_groups]
        return _copy_app(app, empty, list(app.registered_commands))
    return app
