"""Import and build only the part of the command tree a run needs.

Two costs made start-up slow, and each is paid only for what argv names:

* importing every command group's module (and what it imports): the root
  app is a ``LazyTyper`` that knows its groups and root commands by name,
  module and one-line help only, and imports a module when its group or
  command is run;
* turning every registered command into a Click command (Typer inspects and
  evaluates each function's annotations): with a hundred commands it
  dominated start-up.

``pruned(app, argv)`` returns a shallow copy of the app holding only the
group and command that ``argv`` names, or, for root help and the dashboard,
every group and root command by its one-line help only, with nothing
imported.  Nothing is pruned at a level where the name is not recognised, so
errors and suggestions are the same as with the full tree.  Handed to Typer
as it is (``get_command(app)``, the demo tour, tests), the app is the whole
tree: every module is imported the first time its lists are read.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

import typer
from typer.models import CommandInfo, TyperInfo

#: Root options that take a value (their value is not a command name).
_ROOT_VALUE_OPTIONS = {"--db"}


class LazyGroup(NamedTuple):
    """A command group: ``module.attr`` is its ``typer.Typer``.  ``help`` and
    ``short_help`` are what ``add_typer`` is given (root help lists the group
    from these alone); ``help_attr`` names a module attribute to use as the
    full help once the module is loaded.  ``extend`` lists ``(module,
    function)`` pairs whose ``function(group_app)`` adds commands defined
    elsewhere (imported only when a command outside the group's own module
    may be wanted)."""

    name: str
    module: str
    attr: str = "app"
    help: str | None = None
    short_help: str | None = None
    help_attr: str | None = None
    extend: tuple[tuple[str, str], ...] = ()


class LazyCommand(NamedTuple):
    """A root command: the function ``module.attr``, listed with ``help``."""

    name: str
    module: str
    attr: str
    help: str


#: The ``extend`` registrations done so far (they change module-level apps:
#: once per process).
_EXTENDED: set[tuple[str, str, str]] = set()


def _module(name: str) -> ModuleType:
    # __import__ rather than importlib.import_module: ``python -X importtime``
    # only reports imports made through the import statement's machinery
    __import__(name)
    return sys.modules[name]


def _not_loaded() -> None:  # pragma: no cover - pruned() never lets one run
    raise RuntimeError("a command listed for help only was run")


class LazyTyper(typer.Typer):
    """The root app.  Its groups and commands are given as ``LazyGroup`` and
    ``LazyCommand`` rows; ``pruned`` loads only the one argv names.  Reading
    ``registered_groups`` or ``registered_commands`` (as Typer does when given
    the app itself) loads them all, in the order given."""

    def __init__(self, *, groups: Sequence[LazyGroup], commands: Sequence[LazyCommand], **kwargs: Any):
        self.lazy_groups = {g.name: g for g in groups}
        self.lazy_commands = {c.name: c for c in commands}
        self._complete = False
        super().__init__(**kwargs)

    # Typer's own lists, filled on first use ------------------------------------------

    @property  # type: ignore[override]
    def registered_groups(self) -> list[TyperInfo]:
        self._load_all()
        return self._groups

    @registered_groups.setter
    def registered_groups(self, value: list[TyperInfo]) -> None:
        self._groups = value

    @property  # type: ignore[override]
    def registered_commands(self) -> list[CommandInfo]:
        self._load_all()
        return self._commands

    @registered_commands.setter
    def registered_commands(self, value: list[CommandInfo]) -> None:
        self._commands = value

    def _load_all(self) -> None:
        if self._complete:
            return
        self._complete = True
        self._commands = [*self._commands, *(self.command_info(name) for name in self.lazy_commands)]
        self._groups = [*self._groups, *(self.group_info(name) for name in self.lazy_groups)]

    # one group or command ---------------------------------------------------------------

    def command_info(self, name: str, *, placeholder: bool = False) -> CommandInfo:
        """Root command ``name``; a ``placeholder`` has its help but imports
        nothing (for listing only)."""
        spec = self.lazy_commands[name]
        function = _not_loaded if placeholder else getattr(_module(spec.module), spec.attr)
        holder = typer.Typer()
        holder.command(spec.name, help=spec.help)(function)
        return holder.registered_commands[0]

    def group_info(self, name: str, *, command: str | None = None, placeholder: bool = False) -> TyperInfo:
        """Group ``name`` as ``add_typer`` registers it.  With ``command``, the
        ``extend`` modules are imported only if the group's own module has no
        command of that name.  A ``placeholder`` is an empty group with the
        one-line help, and imports nothing (for listing only)."""
        spec = self.lazy_groups[name]
        help_text = spec.help
        if placeholder:
            sub = typer.Typer()
        else:
            module = _module(spec.module)
            sub = getattr(module, spec.attr)
            if spec.help_attr:
                help_text = getattr(module, spec.help_attr)
            if command is None or command not in {_command_name(c) for c in sub.registered_commands}:
                _extend(spec, sub)
        # only what is given: an explicit None would hide the help the group's Typer has
        given = {k: v for k, v in (("help", help_text), ("short_help", spec.short_help)) if v is not None}
        holder = typer.Typer()
        holder.add_typer(sub, name=spec.name, **given)
        return holder.registered_groups[0]

    def listing(self) -> typer.Typer:
        """Root help and the dashboard: every root command and group by its
        one-line help, nothing imported."""
        commands = [self.command_info(name, placeholder=True) for name in self.lazy_commands]
        groups = [self.group_info(name, placeholder=True) for name in self.lazy_groups]
        return _copy_app(self, groups, commands)


def _extend(spec: LazyGroup, sub: typer.Typer) -> None:
    for module, function in spec.extend:
        if (spec.name, module, function) not in _EXTENDED:
            register: Callable[[typer.Typer], None] = getattr(_module(module), function)
            register(sub)
            _EXTENDED.add((spec.name, module, function))


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
    """The non-option words of argv; after '--' every word is one (as Click
    reads them)."""
    words, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--":
            words.extend(argv[i + 1:])
            break
        if arg.startswith("-"):
            if arg in value_options:
                skip = True
            continue
        words.append(arg)
    return words


def _copy_app(app: typer.Typer, groups: list, commands: list) -> typer.Typer:
    """A shallow copy holding ``groups`` and ``commands`` only: a plain
    ``typer.Typer`` (a copy of the lazy root must not load the rest)."""
    new = copy.copy(app)
    new.__class__ = typer.Typer
    new.registered_groups = groups
    new.registered_commands = commands
    return new


def _copy_group(info, sub_app: typer.Typer):
    new = copy.copy(info)
    new.typer_instance = sub_app
    return new


def _prune_group(group: TyperInfo, second: str | None) -> TyperInfo:
    sub = group.typer_instance
    sub_commands = {_command_name(c): c for c in sub.registered_commands}
    sub_groups = {_group_name(g): g for g in sub.registered_groups}
    if second in sub_commands:
        sub = _copy_app(sub, [], [sub_commands[second]])
    elif second in sub_groups:
        sub = _copy_app(sub, [sub_groups[second]], [])
    return _copy_group(group, sub)


def pruned(app: LazyTyper, argv: Sequence[str]) -> typer.Typer:
    """The part of ``app`` that ``argv`` needs (see the module's docstring)."""
    words = _positionals(argv, _ROOT_VALUE_OPTIONS)
    first = words[0] if words else None
    second = words[1] if len(words) > 1 else None
    if first in app.lazy_commands:
        return _copy_app(app, [], [app.command_info(first)])
    if first in app.lazy_groups:
        return _copy_app(app, [_prune_group(app.group_info(first, command=second), second)], [])
    if first is None:
        return app.listing()
    return app
