"""The registry a worker uses, chosen by the ``STREAMPROC_REGISTRY`` setting.

- ``file`` (default): :class:`~streamproc.core.registry.FileRegistry` in ``<data dir>/registry``;
- ``mlflow``: :class:`~streamproc.service.training.mlflow_registry.MlflowRegistry` on the server
  named by ``MLFLOW_TRACKING_URI`` (``pip install 'streamproc[mlflow]'``).

The registry is a deployment-wide choice (every worker and every model the same), so it is a
setting, not a policy key: the policy picks per model how to train, the setting where versions live.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from streamproc.config import Settings
>>> open_registry(Settings(data_dir=Path(tempfile.mkdtemp()))).__class__.__name__
'FileRegistry'
>>> open_registry(Settings(registry="s3"))
Traceback (most recent call last):
...
ValueError: STREAMPROC_REGISTRY='s3' is not a registry; use file (default) or mlflow.
"""

from __future__ import annotations

from streamproc.config import Settings
from streamproc.core.registry import FileRegistry, Registry

__all__ = ["REGISTRIES", "open_registry"]

REGISTRIES = ("file", "mlflow")


def open_registry(settings: Settings) -> Registry:
    """The registry ``settings.registry`` names.

    Raises
    ------
    ValueError
        An unknown kind, or ``mlflow`` without ``MLFLOW_TRACKING_URI``.
    streamproc.core.registry.RegistryError
        ``mlflow`` without the mlflow client installed.
    """
    kind = settings.registry
    if kind == "file":
        return FileRegistry(settings.registry_dir)
    if kind == "mlflow":
        from streamproc.service.training.mlflow_registry import (
            MlflowRegistry,
        )  # imports mlflow: only when used

        return MlflowRegistry()
    raise ValueError(
        f"STREAMPROC_REGISTRY={kind!r} is not a registry; use {REGISTRIES[0]} (default) or "
        f"{REGISTRIES[1]}."
    )
