"""Settings from the environment, overridden by command-line flags.

| variable | default | meaning |
|---|---|---|
| STREAMPROC_BROKER | (local broker) | bootstrap servers of a cluster; then nothing is started |
| STREAMPROC_TOPIC_PREFIX | "" | prepended to every topic name |
| STREAMPROC_PARTITIONS | 4 | partitions of the source topics created on worker start |
| STREAMPROC_POLICY | (default policy) | trigger policy TOML file |
| STREAMPROC_DATA_DIR | ~/.cache/streamproc/run | worker state, model registry, local broker data |
| STREAMPROC_APP_ID | streamproc | consumer group and changelog prefix |
| STREAMPROC_WEB_PORT | 6066 | the worker's web port (bound to 127.0.0.1) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = ["TOPICS", "Settings"]

# Logical topic names of shared/design.md; the prefix is prepended to each.
TOPICS = (
    "predictions",
    "labels",
    "metrics",
    "retrain-requests",
    "retrain-results",
    "deployments",
    "dead-letters",
)


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

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        env = os.environ
        s = cls(
            broker=env.get("STREAMPROC_BROKER") or None,
            topic_prefix=env.get("STREAMPROC_TOPIC_PREFIX", ""),
            partitions=int(env.get("STREAMPROC_PARTITIONS", "4")),
            policy_file=env.get("STREAMPROC_POLICY") or None,
            data_dir=Path(env["STREAMPROC_DATA_DIR"])
            if env.get("STREAMPROC_DATA_DIR")
            else _default_data_dir(),
            app_id=env.get("STREAMPROC_APP_ID", "streamproc"),
            web_port=int(env.get("STREAMPROC_WEB_PORT", "6066")),
        )
        return s.with_(**overrides)

    def with_(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced; ``None`` values leave a field as it is."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def topic(self, logical: str) -> str:
        return f"{self.topic_prefix}{logical}"

    @property
    def registry_dir(self) -> Path:
        return self.data_dir / "registry"
