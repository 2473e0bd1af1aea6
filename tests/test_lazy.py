"""The pruned command tree used by ``main``: every command is reachable and
only what argv names is built."""

from __future__ import annotations

import typer
from typer.main import get_command

from salescrm.cli import app
from salescrm.cli.lazy import _command_name, _group_name, pruned


def _all_paths():
    for c in app.registered_commands:
        yield [_command_name(c)]
    for g in app.registered_groups:
        name = _group_name(g)
        yield [name]
        for c in g.typer_instance.registered_commands:
            yield [name, _command_name(c)]


def test_every_command_is_reachable_through_the_pruned_tree():
    paths = list(_all_paths())
    assert len(paths) > 50
    for path in paths:
        root = get_command(pruned(app, ["--db", "x.db", "-q", *path, "--help"]))
        ctx = typer.Context(root)
        cmd = root.get_command(ctx, path[0])
        assert cmd is not None, path
        if len(path) == 2:
            assert cmd.get_command(ctx, path[1]) is not None, path


def test_only_the_named_command_is_built():
    root = get_command(pruned(app, ["customer", "list", "--limit", "5"]))
    ctx = typer.Context(root)
    assert root.list_commands(ctx) == ["customer"]
    assert root.get_command(ctx, "customer").list_commands(ctx) == ["list"]


def test_root_help_lists_every_group_without_building_their_commands():
    root = get_command(pruned(app, ["--help"]))
    ctx = typer.Context(root)
    names = root.list_commands(ctx)
    assert {"customer", "order", "db"} <= set(names)
    assert root.get_command(ctx, "customer").list_commands(ctx) == []


def test_unknown_names_are_not_pruned(run):
    assert pruned(app, ["custmer", "list"]) is app
    tree = pruned(app, ["customer", "lst"])
    ctx = typer.Context(get_command(tree))
    assert len(get_command(tree).get_command(ctx, "customer").list_commands(ctx)) > 5
