"""Model registries: the :class:`Registry` protocol, and :class:`FileRegistry` on a folder.

A registry keeps versions of models, their metadata and checksummed artifacts, and named
aliases (``champion``: the version deployed now) that move on every promotion and rollback.
The core only knows the protocol; :class:`FileRegistry` is the default, and
:class:`streamproc.service.training.mlflow_registry.MlflowRegistry` keeps the same in an MLflow
model registry.

FileRegistry layout: ``ROOT/<model_id>/<version>/artifact.bin`` and ``meta.json``, aliases in
``ROOT/<model_id>/@aliases/<alias>``. Files are written to a temporary name and renamed, so a
reader never sees half a version. Loading verifies the artifact's sha256.

Examples
--------
>>> import tempfile
>>> reg = FileRegistry(tempfile.mkdtemp())
>>> mv = reg.register("m1", "v2", b"weights", created_ts=10.0, parent_version="v1")
>>> reg.load("m1", "v2")
b'weights'
>>> reg.get("m1", "v2").sha256 == mv.sha256
True
>>> reg.set_alias("m1", CHAMPION, "v2")
>>> reg.get_alias("m1", CHAMPION).version
'v2'
>>> reg.delete_alias("m1", CHAMPION)
>>> reg.get_alias("m1", CHAMPION) is None
True
>>> isinstance(reg, Registry)
True
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

import orjson

from streamproc.core.exceptions import StreamprocError

__all__ = ["CHAMPION", "FileRegistry", "ModelVersion", "Registry", "RegistryError"]

CHAMPION = "champion"
"""The alias of the version deployed now: moved by every promotion and rollback."""


# Longest path segment made of an id. File systems allow 255 bytes per name (NAME_MAX); a
# percent-escaped id takes up to 9 bytes per character (35 CJK characters are 315), and the
# registry's own names ("meta.json.tmp<pid>") need room beside it.
MAX_SEGMENT = 140
_KEEP = 64  # readable prefix of a long id: with "+" and 64 hex digits, 129 bytes at most


def _path_part(ident: str) -> str:
    """An id as one safe path segment: injective, never '.', '..' or containing a separator,
    at most :data:`MAX_SEGMENT` bytes.

    A longer escaped id keeps a readable prefix and ends with ``+`` and the sha256 of the id
    (``+`` never appears in an escaped id, so a short id cannot take a long one's place).

    >>> _path_part("fraud/eu")
    'fraud%2Feu'
    >>> long = _path_part("模型" * 40)
    >>> len(long) <= MAX_SEGMENT and long.startswith("%E6%A8%A1") and "+" in long
    True
    """
    escaped = quote(ident, safe="-_").replace(".", "%2E") or "%00"
    if len(escaped) <= MAX_SEGMENT:
        return escaped
    head = escaped[:_KEEP]
    if "%" in head[-2:]:  # do not cut an escape in two
        head = head[: head.rindex("%")]
    return f"{head}+{hashlib.sha256(ident.encode()).hexdigest()}"


class RegistryError(StreamprocError, RuntimeError):
    """A version that is missing or whose artifact fails its checksum."""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    model_id: str
    version: str
    artifact_uri: str
    sha256: str
    created_ts: float
    parent_version: str | None = None
    request_id: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Registry(Protocol):
    """What the core and the workers need of a model registry.

    Implementations: :class:`FileRegistry` (a folder) and
    :class:`streamproc.service.training.mlflow_registry.MlflowRegistry` (an MLflow model
    registry). Versions are streamproc's own ids (``v-<hash>``, from the request id); a registry
    maps them to its own numbering if it has one.
    """

    def register(
        self,
        model_id: str,
        version: str,
        artifact: bytes,
        created_ts: float,
        parent_version: str | None = None,
        request_id: str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Store a version's artifact and metadata (with its sha256); registering the same
        version again replaces it."""
        ...

    def get(self, model_id: str, version: str) -> ModelVersion | None:
        """The version's metadata, or None when it is not registered."""
        ...

    def load(self, model_id: str, version: str) -> bytes:
        """The version's artifact.

        Raises
        ------
        RegistryError
            The version is missing, or its artifact fails its sha256.
        """
        ...

    def versions(self, model_id: str) -> list[ModelVersion]:
        """Every registered version of the model, oldest first."""
        ...

    def set_alias(self, model_id: str, alias: str, version: str) -> None:
        """Point ``alias`` at a registered version.

        Raises
        ------
        RegistryError
            The version is not registered.
        """
        ...

    def get_alias(self, model_id: str, alias: str) -> ModelVersion | None:
        """The version ``alias`` points at, or None when it is not set."""
        ...

    def delete_alias(self, model_id: str, alias: str) -> None:
        """Remove ``alias`` (nothing happens when it is not set)."""
        ...


class FileRegistry:
    """Versions of models under one root folder (shared by workers on one host or a mount)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, model_id: str, version: str) -> Path:
        # Ids come from the network: never let one climb out of the root.
        return self.root / _path_part(model_id) / _path_part(version)

    def register(
        self,
        model_id: str,
        version: str,
        artifact: bytes,
        created_ts: float,
        parent_version: str | None = None,
        request_id: str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> ModelVersion:
        d = self._dir(model_id, version)
        d.mkdir(parents=True, exist_ok=True)
        path = d / "artifact.bin"
        _atomic_write(path, artifact)
        mv = ModelVersion(
            model_id=model_id,
            version=version,
            artifact_uri=path.resolve().as_uri(),
            sha256=hashlib.sha256(artifact).hexdigest(),
            created_ts=created_ts,
            parent_version=parent_version,
            request_id=request_id,
            metrics=dict(metrics or {}),
        )
        _atomic_write(d / "meta.json", orjson.dumps(asdict(mv), option=orjson.OPT_INDENT_2))
        return mv

    def get(self, model_id: str, version: str) -> ModelVersion | None:
        return _read_meta(self._dir(model_id, version) / "meta.json")

    def load(self, model_id: str, version: str) -> bytes:
        mv = self.get(model_id, version)
        if mv is None:
            raise RegistryError(
                f"model {model_id!r} has no version {version!r} in {self.root}; "
                "check the version or the registry path (STREAMPROC_DATA_DIR)."
            )
        data = (self._dir(model_id, version) / "artifact.bin").read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != mv.sha256:
            raise RegistryError(
                f"artifact of {model_id} {version} fails its checksum ({digest[:12]} != "
                f"{mv.sha256[:12]}); it was modified or truncated: retrain or restore it."
            )
        return data

    def versions(self, model_id: str) -> list[ModelVersion]:
        base = self.root / _path_part(model_id)
        if not base.exists():
            return []
        # Each version's own meta names it: a long version's folder name is hashed.
        found = (_read_meta(p / "meta.json") for p in base.iterdir() if p.is_dir())
        return sorted((v for v in found if v), key=lambda v: v.created_ts)

    def _alias_path(self, model_id: str, alias: str) -> Path:
        # "@" is escaped in every version's folder name: no version can be called "@aliases".
        return self.root / _path_part(model_id) / "@aliases" / _path_part(alias)

    def set_alias(self, model_id: str, alias: str, version: str) -> None:
        if self.get(model_id, version) is None:
            raise RegistryError(
                f"cannot point alias {alias!r} of {model_id!r} at {version!r}: that version is "
                f"not in {self.root}; register it first (versions deployed from outside "
                "streamproc are not in its registry)."
            )
        path = self._alias_path(model_id, alias)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, version.encode())  # one file per alias: no read-modify-write race

    def get_alias(self, model_id: str, alias: str) -> ModelVersion | None:
        path = self._alias_path(model_id, alias)
        if not path.exists():
            return None
        return self.get(model_id, path.read_bytes().decode())

    def delete_alias(self, model_id: str, alias: str) -> None:
        self._alias_path(model_id, alias).unlink(missing_ok=True)


def _read_meta(meta: Path) -> ModelVersion | None:
    if not meta.exists():
        return None
    return ModelVersion(**orjson.loads(meta.read_bytes()))


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
