"""Every `yibao … --help` in the command tree is whole: no command's short help (the line its group lists it with) is cut
with "…" or missing words, at 80 and 120 columns and in a pipe (no COLUMNS: Rich's 80)."""

from __future__ import annotations

import re

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from yibao.cli import app


def _tree(cmd, path=()):  # noqa: ANN001, ANN202
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _tree(sub, (*path, name))


TREE = list(_tree(get_command(app)))


def _flat(text: str) -> str:
    """The help's words in order, the panels' borders and the wrapping gone."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.mark.parametrize("columns", ["80", "120", None])
def test_no_help_in_the_tree_is_cut(columns):
    env = {"COLUMNS": columns} if columns else {"COLUMNS": ""}
    assert len(TREE) > 30
    for path, cmd in TREE:
        out = CliRunner().invoke(app, [*path, "--help"], env=env, prog_name="yibao")
        assert out.exit_code == 0, (path, out.output)
        assert "…" not in out.stdout, (path, [ln for ln in out.stdout.splitlines() if "…" in ln])
        listed = _flat(out.stdout)
        for name, sub in getattr(cmd, "commands", {}).items():
            short = sub.short_help or sub.help
            assert short and "\n" not in short.strip(), (name, "a command its group lists needs a one-line short help")
            assert _flat(short) in listed, (path, name, short)


def test_every_command_has_a_short_help_of_its_own():
    """A command (not a group) names itself in Chinese and English in one line; its full help stays on its own page."""
    commands = [(path, cmd) for path, cmd in TREE if not hasattr(cmd, "commands")]
    assert len(commands) >= 20
    for path, cmd in commands:
        assert cmd.short_help and re.match(r"[\u4e00-\u9fff]", cmd.short_help) and re.search(r"[A-Za-z]", cmd.short_help), path
        assert cmd.short_help.endswith("."), path
