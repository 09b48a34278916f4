"""Settings from the environment, overridden by command-line flags.

| variable | default | meaning |
|---|---|---|
| STREAMPROC_BROKER | (local broker) | bootstrap servers of a cluster; then nothing is started |
| STREAMPROC_TOPIC_PREFIX | "" | prepended to every topic name |
| STREAMPROC_PARTITIONS | 4 | partitions of the source topics created on worker start |
| STREAMPROC_POLICY | (default policy) | trigger policy TOML file |
| STREAMPROC_DATA_DIR | ~/.cache/streamproc/run | worker state, model registry, local broker data |
| STREAMPROC_REGISTRY | file | model registry: file (<data dir>/registry) or mlflow |
| STREAMPROC_APP_ID | streamproc | consumer group and changelog prefix |
| STREAMPROC_WEB_HOST | 127.0.0.1 | address the worker's web server binds (0.0.0.0: all) |
| STREAMPROC_WEB_PORT | 6066 | the worker's web port |
| STREAMPROC_STORE | rocksdb | table store: rocksdb (on disk, rocksdict) or memory |
| STREAMPROC_REPLICATION | 1 | replication factor of the topics and changelogs a worker creates |
| STREAMPROC_STALL_S | 180 | no commits this long with records waiting: /health fails (503) |
| STREAMPROC_CHECKPOINT_S | 2.0 | seconds between state checkpoints (then offsets commit) |
| STREAMPROC_METRICS_MODELS | 100 | models that get their own label in /metrics |
| STREAMPROC_ADMIN_TOKEN | (none: refused) | token for manual retrain / rollback on the web API |
| STREAMPROC_ADMIN_TOKEN_FILE | | file holding that token; wins over the variable |
| STREAMPROC_WEB_AUTH | actions | token for: actions; reads (+ /api, /dashboard); all (+ /metrics) |
| STREAMPROC_SECURITY_PROTOCOL | PLAINTEXT | PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL |
| STREAMPROC_SASL_MECHANISM | PLAIN | PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 |
| STREAMPROC_SASL_USERNAME | | SASL user name |
| STREAMPROC_SASL_PASSWORD | | SASL password (never logged) |
| STREAMPROC_SASL_PASSWORD_FILE | | file holding the SASL password; wins over the variable |
| STREAMPROC_SSL_CAFILE | (system CAs) | PEM CA file that verifies the brokers |
| STREAMPROC_SSL_CERTFILE, STREAMPROC_SSL_KEYFILE | | PEM client certificate and key (mutual TLS) |

The security variables fill ``Settings.security``, a :class:`~streamproc.security.KafkaSecurity`;
see :mod:`streamproc.security`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from streamproc.core.exceptions import StreamprocError
from streamproc.core.topics import TOPICS, prefixed  # TOPICS: re-exported for old imports
from streamproc.security import KafkaSecurity

__all__ = ["TOPICS", "Settings", "SettingsError"]


class SettingsError(StreamprocError, ValueError):
    """A setting that cannot be used; the message names the variable, the value, what is allowed."""


def _store(name: str) -> str:
    if name not in ("rocksdb", "memory"):
        raise ValueError(
            f"STREAMPROC_STORE={name!r} is not a table store; use rocksdb (default) or memory."
        )
    return name


WEB_AUTH_LEVELS = ("actions", "reads", "all")


def _web_auth(level: str) -> str:
    if level not in WEB_AUTH_LEVELS:
        raise ValueError(
            f"STREAMPROC_WEB_AUTH={level!r} is not a level; use actions (default: only manual "
            "actions need the token), reads (also /api/* and the dashboard) or all (also /metrics)."
        )
    return level


def _default_data_dir() -> Path:
    return Path(os.environ.get("STREAMPROC_CACHE", Path.home() / ".cache" / "streamproc")) / "run"


@dataclass(frozen=True)
class Settings:
    broker: str | None = None
    topic_prefix: str = ""
    partitions: int = 4
    policy_file: str | None = None
    data_dir: Path = Path()
    app_id: str = "streamproc"
    web_port: int = 6066
    gate_margin: float = 0.0
    web_host: str = "127.0.0.1"
    metrics_models: int = 100
    store: str = "rocksdb"
    checkpoint_s: float = 2.0
    replication: int = 1
    stall_s: float = 180.0
    commit_gap_s: float = 30.0
    label_lead_s: float = 0.0  # labels ahead of their predictions (record time) held past this
    admin_token_file: str | None = None
    web_auth: str = "actions"  # what needs the admin token: actions, reads or all
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    registry: str = "file"  # file or mlflow: see streamproc.service.training.registries

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        env = os.environ
        s = cls(
            broker=env.get("STREAMPROC_BROKER") or None,
            topic_prefix=env.get("STREAMPROC_TOPIC_PREFIX", ""),
            partitions=_env_int(env, "STREAMPROC_PARTITIONS", 4),
            policy_file=env.get("STREAMPROC_POLICY") or None,
            data_dir=Path(env["STREAMPROC_DATA_DIR"])
            if env.get("STREAMPROC_DATA_DIR")
            else _default_data_dir(),
            app_id=env.get("STREAMPROC_APP_ID", "streamproc"),
            web_port=_env_int(env, "STREAMPROC_WEB_PORT", 6066),
            web_host=env.get("STREAMPROC_WEB_HOST") or "127.0.0.1",
            metrics_models=_env_int(env, "STREAMPROC_METRICS_MODELS", 100),
            store=_store(env.get("STREAMPROC_STORE", "rocksdb")),
            checkpoint_s=_env_float(env, "STREAMPROC_CHECKPOINT_S", 2.0),
            replication=_env_int(env, "STREAMPROC_REPLICATION", 1),
            stall_s=_env_float(env, "STREAMPROC_STALL_S", 180.0),
            commit_gap_s=_env_float(env, "STREAMPROC_COMMIT_GAP_S", 30.0),
            label_lead_s=_env_float(env, "STREAMPROC_LABEL_LEAD_S", 0.0),
            admin_token_file=env.get("STREAMPROC_ADMIN_TOKEN_FILE") or None,
            web_auth=_web_auth(env.get("STREAMPROC_WEB_AUTH") or "actions"),
            security=KafkaSecurity.from_env(env),
            registry=env.get("STREAMPROC_REGISTRY") or "file",
        )
        return s.with_(**overrides)

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in _RANGES:
                _check_range(f.name, getattr(self, f.name))

    def with_(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced; ``None`` values leave a field as it is."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def admin_token(self) -> str | None:
        """The token manual actions need: ``STREAMPROC_ADMIN_TOKEN_FILE``'s content, or
        ``STREAMPROC_ADMIN_TOKEN``; None (actions refused) when neither is set."""
        if self.admin_token_file:
            try:
                return Path(self.admin_token_file).read_text().strip() or None
            except OSError as exc:
                raise ValueError(
                    f"cannot read STREAMPROC_ADMIN_TOKEN_FILE {self.admin_token_file!r} "
                    f"({exc.strerror}); point it at a readable file or unset it."
                ) from None
        return os.environ.get("STREAMPROC_ADMIN_TOKEN") or None

    def topic(self, logical: str) -> str:
        return prefixed(self.topic_prefix, logical)

    @property
    def registry_dir(self) -> Path:
        return self.data_dir / "registry"


# ------------------------------------------------------------------ validation

# field: (environment variable, command-line flag or "", lowest, highest, what is allowed)
_RANGES: dict[str, tuple[str, str, float, float, str]] = {
    "partitions": ("STREAMPROC_PARTITIONS", "--partitions", 1, 10_000, "a whole number 1-10000"),
    "web_port": ("STREAMPROC_WEB_PORT", "--web-port", 1, 65_535, "a TCP port 1-65535"),
    "metrics_models": (
        "STREAMPROC_METRICS_MODELS",
        "",
        0,
        1_000_000,
        "a whole number 0-1000000",
    ),
    "replication": ("STREAMPROC_REPLICATION", "", 1, 100, "a whole number 1-100"),
    "checkpoint_s": ("STREAMPROC_CHECKPOINT_S", "", 0.01, 3600.0, "seconds from 0.01 to 3600"),
    "stall_s": ("STREAMPROC_STALL_S", "", 1.0, 86_400.0, "seconds from 1 to 86400"),
    "commit_gap_s": ("STREAMPROC_COMMIT_GAP_S", "", 1.0, 86_400.0, "seconds from 1 to 86400"),
    "label_lead_s": ("STREAMPROC_LABEL_LEAD_S", "", 0.0, 86_400.0, "seconds from 0 to 86400"),
}


def _named(name: str) -> str:
    var, flag = _RANGES[name][:2]
    return f"{var} (or {flag})" if flag else var


def _check_range(name: str, value: Any) -> None:
    lo, hi, allowed = _RANGES[name][2:]
    whole = isinstance(lo, int)
    ok_type = isinstance(value, int) if whole else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or not math.isfinite(value) or not lo <= value <= hi:
        raise SettingsError(f"{_named(name)} = {value!r} is not usable; set {allowed}.")


def _env_int(env: Any, var: str, default: int) -> int:
    raw = env.get(var)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw.strip())
    except ValueError:
        name = next(k for k, v in _RANGES.items() if v[0] == var)
        raise SettingsError(
            f"{var}={raw!r} is not a whole number; set {_RANGES[name][4]} (default {default})."
        ) from None


def _env_float(env: Any, var: str, default: float) -> float:
    raw = env.get(var)
    if raw is None or raw.strip() == "":
        return default
    name = next(k for k, v in _RANGES.items() if v[0] == var)
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise SettingsError(
            f"{var}={raw!r} is not a finite number; set {_RANGES[name][4]} (default {default})."
        )
    return value
