"""One exception root: every project error derives from StreamprocError, and the CLI catches it.

The classes are found by importing every module of the package, so a new exception class
cannot be missed by forgetting to list it here.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil

import pytest

import streamproc
import streamproc.cli as cli
from streamproc import StreamprocError


def _project_exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(streamproc.__path__, "streamproc."):
        if info.name.endswith("__main__"):  # running it is the command line itself
            continue
        module = importlib.import_module(info.name)
        found.extend(
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj)
            and issubclass(obj, BaseException)
            and obj.__module__ == info.name
            and obj is not StreamprocError
        )
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


EXCEPTIONS = _project_exceptions()


def _name(cls: type) -> str:
    return cls.__name__


def test_the_walk_finds_the_known_exception_classes() -> None:
    names = {c.__name__ for c in EXCEPTIONS}
    assert names >= {"InvalidEvent", "PolicyError", "SecurityConfigError", "SettingsError",
                     "PreflightError", "BrokerError", "RegistryError", "TrainerError"}  # fmt: skip


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=_name)
def test_every_project_exception_derives_from_the_root(cls: type[BaseException]) -> None:
    assert issubclass(cls, StreamprocError), f"{cls.__module__}.{cls.__name__}: add the root"


def test_historic_second_bases_are_kept_for_existing_callers() -> None:
    by_name = {c.__name__: c for c in EXCEPTIONS}
    for name in ("InvalidEvent", "PolicyError", "SecurityConfigError", "SettingsError"):
        assert issubclass(by_name[name], ValueError), name
    for name in ("BrokerError", "RegistryError", "TrainerError"):
        assert issubclass(by_name[name], RuntimeError), name


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=_name)
def test_the_cli_turns_each_into_one_sentence_and_exit_code_2(
    cls: type[BaseException], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = f"{cls.__name__} happened; do the thing it says."

    def fail(args: argparse.Namespace) -> int:
        raise cls(message)

    def parser() -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(prog="streamproc")
        p.set_defaults(func=fail)
        return p

    monkeypatch.setattr(cli, "build_parser", parser)
    assert cli.main([]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"streamproc: {message}\n"
    assert captured.out == ""
