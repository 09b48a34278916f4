"""The command line: every option explains itself, and the version is printed."""

from __future__ import annotations

import argparse

import pytest

from streamproc import __version__
from streamproc.cli import build_parser


def _walk(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.Action]]:
    out: list[tuple[str, argparse.Action]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.extend(_walk(sub, f"{path} {name}"))
        else:
            out.append((path, action))
    return out


def test_every_option_and_argument_of_every_command_has_help() -> None:
    actions = _walk(build_parser(), "streamproc")
    missing = [
        f"{where}: {'/'.join(a.option_strings) or a.dest}"
        for where, a in actions
        if not a.help or a.help == argparse.SUPPRESS
    ]
    assert len(actions) > 40  # the walk reached the subcommands
    assert missing == []


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"streamproc {__version__}"


def test_replay_help_points_to_the_event_contracts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["replay", "--help"])
    assert "docs/contracts.md" in capsys.readouterr().out
