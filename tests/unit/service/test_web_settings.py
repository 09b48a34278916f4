"""Settings of the web port: what needs the token, and the faust app they configure."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamproc.config import Settings
from streamproc.service.app import create_app


def test_web_auth_defaults_to_actions_and_takes_the_three_levels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STREAMPROC_WEB_AUTH", raising=False)
    assert Settings.from_env().web_auth == "actions"
    for level in ("actions", "reads", "all"):
        monkeypatch.setenv("STREAMPROC_WEB_AUTH", level)
        assert Settings.from_env().web_auth == level


def test_an_unknown_web_auth_level_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMPROC_WEB_AUTH", "everything")
    with pytest.raises(ValueError, match=r"STREAMPROC_WEB_AUTH='everything'.*actions.*reads.*all"):
        Settings.from_env()


def test_the_app_serves_none_of_fausts_views_and_binds_loopback(tmp_path: Path) -> None:
    conf = create_app(Settings(data_dir=tmp_path), "127.0.0.1:1").app
    assert conf.conf.web_bind == "127.0.0.1"
    flags = ("web_tables_enabled", "web_router_enabled", "web_stats_enabled",
             "web_graph_enabled", "web_metrics_enabled")  # fmt: skip
    assert not any(getattr(conf.conf, f) for f in flags)
    # Not even the placeholder index faust mounts at "/" when its statistics are off.
    conf.web.init_server()
    assert not conf.web.blueprints._active
    assert not any(
        r.resource and r.resource.canonical == "/" for r in conf.web.web_app.router.routes()
    )
