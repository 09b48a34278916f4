"""The command line means what it says (issue 12 items 7-10): validated settings named by their
variable, a working ``-l/--loglevel``, the policy checked before any broker starts, and one
sentence instead of a traceback for a missing input, a busy port, an unreachable broker."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from streamproc import cli
from streamproc.cli.commands import worker as worker_command
from streamproc.cli.common import loglevel
from streamproc.config import Settings, SettingsError
from streamproc.devkit.harness import free_port

_VARS = (
    "STREAMPROC_BROKER",
    "STREAMPROC_PARTITIONS",
    "STREAMPROC_WEB_PORT",
    "STREAMPROC_CHECKPOINT_S",
    "STREAMPROC_STALL_S",
    "STREAMPROC_LABEL_LEAD_S",
    "STREAMPROC_REPLICATION",
    "STREAMPROC_METRICS_MODELS",
    "STREAMPROC_POLICY",
    "STREAMPROC_DATA_DIR",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in _VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("STREAMPROC_DATA_DIR", str(tmp_path / "data"))


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


def no_broker_started(tmp_path: Path) -> bool:
    return not (tmp_path / "data" / "kafka").exists()


# ------------------------------------------------------------------ item 8: settings


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("STREAMPROC_PARTITIONS", "four", "is not a whole number"),
        ("STREAMPROC_PARTITIONS", "-3", "a whole number 1-10000"),
        ("STREAMPROC_PARTITIONS", "0", "a whole number 1-10000"),
        ("STREAMPROC_CHECKPOINT_S", "nan", "is not a finite number"),
        ("STREAMPROC_CHECKPOINT_S", "inf", "is not a finite number"),
        ("STREAMPROC_CHECKPOINT_S", "0", "seconds from 0.01 to 3600"),
        ("STREAMPROC_WEB_PORT", "99999", "a TCP port 1-65535"),
        ("STREAMPROC_WEB_PORT", "http", "is not a whole number"),
        ("STREAMPROC_STALL_S", "-1", "seconds from 1 to 86400"),
        ("STREAMPROC_LABEL_LEAD_S", "-0.5", "seconds from 0 to 86400"),
        ("STREAMPROC_REPLICATION", "0", "a whole number 1-100"),
        ("STREAMPROC_METRICS_MODELS", "-5", "a whole number 0-1000000"),
    ],
)
def test_a_bad_setting_is_one_sentence_naming_the_variable(
    var: str,
    value: str,
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as info:
        Settings.from_env()
    assert var in str(info.value) and value in str(info.value) and says in str(info.value)
    code, err = run(["worker"], capsys)
    assert code == 2
    assert err.startswith("streamproc: ") and var in err and "Traceback" not in err
    assert err.count("\n") == 1
    assert no_broker_started(tmp_path)


def test_good_settings_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in [
        ("STREAMPROC_PARTITIONS", " 8 "),
        ("STREAMPROC_WEB_PORT", "7077"),
        ("STREAMPROC_CHECKPOINT_S", "0.5"),
        ("STREAMPROC_STALL_S", "60"),
        ("STREAMPROC_LABEL_LEAD_S", "2.5"),
    ]:
        monkeypatch.setenv(var, value)
    s = Settings.from_env()
    assert (s.partitions, s.web_port, s.checkpoint_s, s.stall_s) == (8, 7077, 0.5, 60.0)
    assert s.label_lead_s == 2.5


@pytest.mark.parametrize(("flag", "value"), [("--partitions", "-3"), ("--web-port", "99999")])
def test_bad_flags_are_named_too(
    flag: str, value: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = run(["worker", flag, value], capsys)
    assert code == 2 and flag in err and value in err and "Traceback" not in err
    assert no_broker_started(tmp_path)


# ------------------------------------------------------------------ item 7: --loglevel


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        (["worker", "--loglevel", "warning"], logging.WARNING),
        (["worker", "-l", "DEBUG"], logging.DEBUG),
        (["worker", "-l", "Error"], logging.ERROR),
        (["worker", "--loglevel", "critical"], logging.CRITICAL),
        (["worker"], logging.INFO),
        (["-v", "worker"], logging.DEBUG),
        (["-v", "worker", "-l", "warning"], logging.WARNING),
    ],
)
def test_loglevel_sets_the_level_the_worker_logs_at(
    argv: list[str], level: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    def fake_worker(args: object) -> int:
        root = logging.getLogger()
        seen["root"] = root.level
        seen["faust"] = loglevel(args)  # type: ignore[arg-type]
        seen["info_shown"] = logging.getLogger("cli-level-probe").isEnabledFor(logging.INFO)
        return 0

    monkeypatch.setattr(worker_command, "run", fake_worker)
    before = logging.getLogger().level
    try:
        assert cli.main(argv) == 0
    finally:
        logging.getLogger().setLevel(before)
    assert seen["root"] == level
    assert seen["faust"] == logging.getLevelName(level).lower()
    assert seen["info_shown"] == (level <= logging.INFO)


def test_a_bogus_loglevel_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["worker", "--loglevel", "bogus"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--loglevel" in err and "'bogus'" in err and "warning" in err


# ------------------------------------------------------------------ item 9: policy first


@pytest.mark.parametrize(
    "text",
    ["[default]\ncooldwn_s = 5\n", "[default.drift]\nnumeric = { detector = 'ks', alpah = 1 }\n"],
)
def test_a_bad_policy_is_refused_before_any_broker_starts(
    text: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    typo = tmp_path / "typo.toml"
    typo.write_text(text)
    code, err = run(["worker", "--policy", str(typo), "--web-port", str(free_port())], capsys)
    assert code == 2 and "typo.toml" in err and "Traceback" not in err
    assert no_broker_started(tmp_path)


def test_a_missing_policy_file_is_refused_before_any_broker_starts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = run(["worker", "--policy", str(tmp_path / "nope.toml")], capsys)
    assert code == 2 and "nope.toml" in err and "check the path" in err
    assert no_broker_started(tmp_path)


# ------------------------------------------------------------------ item 10: one sentence


def test_a_missing_replay_input_is_one_sentence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = run(["replay", str(tmp_path / "traffic.jsonl")], capsys)
    assert code == 2
    assert "traffic.jsonl" in err and "No such file" in err and "streamproc record" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_a_busy_web_port_is_one_sentence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = run(["worker", "--web-port", str(port)], capsys)
    assert code == 2
    assert f"127.0.0.1:{port} is in use" in err and "STREAMPROC_WEB_PORT" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert no_broker_started(tmp_path)


@pytest.mark.parametrize("command", [["worker"], ["record", "--out", "x.jsonl"], ["simulate"]])
def test_an_unreachable_broker_is_one_sentence_naming_the_variable(
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    dead = free_port()  # nothing listens there
    monkeypatch.setenv("STREAMPROC_BROKER", f"127.0.0.1:{dead}")
    monkeypatch.chdir(tmp_path)
    code, err = run([*command, "--web-port", str(free_port())], capsys)
    assert code == 2
    assert "STREAMPROC_BROKER" in err and f"127.0.0.1:{dead}" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_a_broker_address_without_a_port_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAMPROC_BROKER", "kafka.example")
    code, err = run(["record", "--out", "x.jsonl"], capsys)
    assert code == 2 and "'kafka.example' is not host:port" in err
