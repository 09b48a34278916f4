"""A model registry in MLflow: each candidate a model version, ``champion`` moved on deployments.

:class:`MlflowRegistry` implements :class:`streamproc.core.registry.Registry` with MLflow's
client (``pip install 'streamproc[mlflow]'``, which brings mlflow-skinny; mlflow is imported
only when a registry is built, so the rest of streamproc never needs it).

Mapping (MLflow's own model-registry API, nothing else):

- a streamproc model is a registered model named after its id (``/``, ``:`` and ``%`` are
  percent-escaped: MLflow refuses the first two in names);
- a candidate is one run in the experiment ``streamproc`` holding ``streamproc/artifact.bin``,
  and one model version whose source is that folder, tagged ``streamproc.version`` (streamproc's
  version id, ``v-<hash>``), ``streamproc.sha256``, ``streamproc.model_id``,
  ``streamproc.parent_version``, ``streamproc.request_id``, ``streamproc.created_ts`` and
  ``streamproc.metrics`` (JSON); the numeric metrics are also logged on the run;
- a version is found with ``search_model_versions`` on its ``streamproc.version`` tag;
- aliases are MLflow registered-model aliases (``champion`` follows every promotion and
  rollback), so ``models:/<name>@champion`` is the deployed version;
- every load downloads the artifact and checks it against the version's sha256 tag.

The deployment events a worker publishes carry ``models:/<name>/<n>``; :meth:`load_uri` loads
such a URI (or ``models:/<name>@<alias>``) with the same check.

Examples
--------
>>> model_name("fraud/eu:v2")
'fraud%2Feu%3Av2'
>>> parse_models_uri("models:/fraud%2Feu/3"), parse_models_uri("models:/m@champion")
(('fraud%2Feu', '3', None), ('m', None, 'champion'))
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Final

import orjson

from streamproc.core.registry import ModelVersion, RegistryError

__all__ = ["MlflowRegistry", "model_name", "parse_models_uri"]

log = logging.getLogger(__name__)

TAG_VERSION: Final = "streamproc.version"
TAG_SHA256: Final = "streamproc.sha256"
TAG_MODEL: Final = "streamproc.model_id"
TAG_PARENT: Final = "streamproc.parent_version"
TAG_REQUEST: Final = "streamproc.request_id"
TAG_CREATED: Final = "streamproc.created_ts"
TAG_METRICS: Final = "streamproc.metrics"
ARTIFACT_DIR: Final = "streamproc"
ARTIFACT_FILE: Final = "artifact.bin"
# MLflow keeps model-version tag values up to 100,000 characters; metrics beyond that are cut.
MAX_METRICS_JSON: Final = 90_000
INSTALL_HINT: Final = "install it with: pip install 'streamproc[mlflow]'"


def model_name(model_id: str, prefix: str = "") -> str:
    """The registered model's name for a model id: injective, without ``/`` or ``:``."""
    escaped = model_id.replace("%", "%25").replace("/", "%2F").replace(":", "%3A")
    return prefix + escaped


def parse_models_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/<name>/<version>`` or ``models:/<name>@<alias>`` as (name, version, alias).

    Raises
    ------
    ValueError
        Not such a URI (``models:/<name>/latest`` and stages are not supported: they do not name
        one checksummed version).
    """
    if not uri.startswith("models:/"):
        raise ValueError(f"{uri!r} is not a models:/ URI")
    rest = uri.removeprefix("models:/").strip("/")
    if "@" in rest:
        name, alias = rest.rsplit("@", 1)
        if name and alias:
            return name, None, alias
    elif "/" in rest:
        name, version = rest.rsplit("/", 1)
        if name and version.isdigit():
            return name, version, None
    raise ValueError(
        f"{uri!r} is not models:/<name>/<version number> or models:/<name>@<alias>; "
        "name one version (not a stage or 'latest'), so its checksum can be verified"
    )


def _quoted(value: str) -> str:
    """A string literal for MLflow's search filter."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise RegistryError(
        f"{value!r} holds both quote characters, which MLflow's search filter cannot express; "
        "use model and version ids without quotes with the MLflow registry"
    )


class MlflowRegistry:
    """Versions of models in an MLflow model registry (see the module's documentation).

    Parameters
    ----------
    tracking_uri : str, optional
        The MLflow server, e.g. ``http://mlflow:5000``; by default ``MLFLOW_TRACKING_URI``.
        MLflow's own variables (``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_USERNAME`` /
        ``_PASSWORD``, ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, ...) apply as usual.
    registry_uri : str, optional
        A separate model-registry server; by default the tracking server
        (``MLFLOW_REGISTRY_URI`` when set).
    experiment : str
        The experiment that holds the candidates' runs (created when missing).
    name_prefix : str
        Prepended to every registered model's name (to share a registry between teams).

    Raises
    ------
    RegistryError
        mlflow is not installed.
    ValueError
        No tracking URI is given or set.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        experiment: str = "streamproc",
        name_prefix: str = "",
    ) -> None:
        # MLflow writes a "View run" link to stdout when a run ends; a worker's stdout is not a
        # person's terminal. A value the user set wins.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        try:
            from mlflow import MlflowClient
        except ImportError:
            raise RegistryError(
                f"the MLflow registry needs the mlflow client; {INSTALL_HINT}"
            ) from None
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            raise ValueError(
                "the MLflow registry needs a tracking server: set MLFLOW_TRACKING_URI "
                "(e.g. http://mlflow:5000) or pass tracking_uri"
            )
        self.tracking_uri = uri
        self.registry_uri = registry_uri or os.environ.get("MLFLOW_REGISTRY_URI") or uri
        self.experiment = experiment
        self.name_prefix = name_prefix
        self._client = MlflowClient(tracking_uri=uri, registry_uri=self.registry_uri)
        self._experiment_id: str | None = None

    def __repr__(self) -> str:
        return f"MlflowRegistry({self.tracking_uri!r}, experiment={self.experiment!r})"

    def name(self, model_id: str) -> str:
        """The registered model's name for ``model_id``."""
        return model_name(model_id, self.name_prefix)

    # -- writing ----------------------------------------------------------------------------

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
        """Log the artifact in a run and register it as a new model version.

        A version already registered with the same sha256 is returned as it is (a job re-run
        after a crash registers nothing twice). With another sha256 a new model version is
        registered; lookups then resolve the newest one.
        """
        sha = hashlib.sha256(artifact).hexdigest()
        existing = self._find(model_id, version)
        if existing is not None and existing.tags.get(TAG_SHA256) == sha:
            return self._to_version(model_id, existing)
        name = self._ensure_model(model_id)
        metrics = dict(metrics or {})
        run = self._client.create_run(
            self._experiment(),
            run_name=f"{model_id} {version}"[:250],
            tags={TAG_MODEL: model_id, TAG_VERSION: version},
        )
        run_id = run.info.run_id
        try:
            with tempfile.TemporaryDirectory(prefix="streamproc-mlflow-") as tmp:
                path = Path(tmp) / ARTIFACT_FILE
                path.write_bytes(artifact)
                self._client.log_artifact(run_id, str(path), artifact_path=ARTIFACT_DIR)
            self._log_metrics(run_id, metrics, created_ts)
        finally:
            self._client.set_terminated(run_id)
        tags = {
            TAG_MODEL: model_id,
            TAG_VERSION: version,
            TAG_SHA256: sha,
            TAG_CREATED: repr(float(created_ts)),
            TAG_METRICS: _metrics_json(metrics),
        }
        if parent_version is not None:
            tags[TAG_PARENT] = parent_version
        if request_id is not None:
            tags[TAG_REQUEST] = request_id
        mv = self._client.create_model_version(
            name,
            source=f"{run.info.artifact_uri.rstrip('/')}/{ARTIFACT_DIR}",
            run_id=run_id,
            tags=tags,
            description=f"streamproc {version} of {model_id}",
        )
        log.info(
            "model %s: registered %s as MLflow %s version %s", model_id, version, name, mv.version
        )
        return self._to_version(model_id, mv)

    def set_alias(self, model_id: str, alias: str, version: str) -> None:
        mv = self._find(model_id, version)
        if mv is None:
            raise RegistryError(
                f"cannot point alias {alias!r} of {model_id!r} at {version!r}: no version of "
                f"MLflow model {self.name(model_id)!r} is tagged {TAG_VERSION}={version}; "
                "register it first (versions deployed from outside streamproc are not in it)."
            )
        self._client.set_registered_model_alias(mv.name, alias, mv.version)

    def delete_alias(self, model_id: str, alias: str) -> None:
        if self.get_alias(model_id, alias) is not None:
            self._client.delete_registered_model_alias(self.name(model_id), alias)

    # -- reading ----------------------------------------------------------------------------

    def get(self, model_id: str, version: str) -> ModelVersion | None:
        mv = self._find(model_id, version)
        return None if mv is None else self._to_version(model_id, mv)

    def get_alias(self, model_id: str, alias: str) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        name = self.name(model_id)
        try:
            number = self._client.get_registered_model(name).aliases.get(alias)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        if number is None:
            return None
        return self._to_version(model_id, self._client.get_model_version(name, str(number)))

    def versions(self, model_id: str) -> list[ModelVersion]:
        found = self._client.search_model_versions(f"name = {_quoted(self.name(model_id))}")
        ours = [self._to_version(model_id, mv) for mv in found if TAG_VERSION in mv.tags]
        return sorted(ours, key=lambda v: v.created_ts)

    def load(self, model_id: str, version: str) -> bytes:
        mv = self._find(model_id, version)
        if mv is None:
            raise RegistryError(
                f"model {model_id!r} has no version {version!r} in MLflow model "
                f"{self.name(model_id)!r} at {self.registry_uri}; check the version, "
                "MLFLOW_TRACKING_URI, or the registry the workers use (STREAMPROC_REGISTRY)."
            )
        return self._download(mv)

    def load_uri(self, uri: str) -> bytes:
        """The artifact of ``models:/<name>/<n>`` or ``models:/<name>@<alias>``, verified.

        Raises
        ------
        RegistryError
            Not such a URI, no such version or alias, no streamproc sha256 tag on the version,
            or an artifact that fails it.
        """
        from mlflow.exceptions import MlflowException

        try:
            name, number, alias = parse_models_uri(uri)
        except ValueError as exc:
            raise RegistryError(str(exc)) from None
        try:
            if alias is not None:
                mv = self._client.get_model_version_by_alias(name, alias)
            else:
                mv = self._client.get_model_version(name, str(number))
        except MlflowException as exc:
            raise RegistryError(
                f"{uri} is not in the MLflow registry at {self.registry_uri} ({exc.message}); "
                "check the URI and MLFLOW_TRACKING_URI."
            ) from None
        return self._download(mv)

    # -- internals --------------------------------------------------------------------------

    def _experiment(self) -> str:
        if self._experiment_id is None:
            exp = self._client.get_experiment_by_name(self.experiment)
            if exp is not None:
                self._experiment_id = str(exp.experiment_id)
            else:
                from mlflow.exceptions import MlflowException

                try:
                    self._experiment_id = str(self._client.create_experiment(self.experiment))
                except MlflowException:  # another worker created it meanwhile
                    again = self._client.get_experiment_by_name(self.experiment)
                    if again is None:
                        raise
                    self._experiment_id = str(again.experiment_id)
        return self._experiment_id

    def _ensure_model(self, model_id: str) -> str:
        from mlflow.exceptions import MlflowException

        name = self.name(model_id)
        try:
            self._client.create_registered_model(
                name, tags={TAG_MODEL: model_id}, description=f"streamproc model {model_id}"
            )
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        return name

    def _find(self, model_id: str, version: str) -> Any:
        """The newest MLflow model version tagged with streamproc's ``version``, or None."""
        query = (
            f"name = {_quoted(self.name(model_id))} and tags.`{TAG_VERSION}` = {_quoted(version)}"
        )
        found = self._client.search_model_versions(query)
        return max(found, key=lambda mv: int(mv.version), default=None)

    def _download(self, mv: Any) -> bytes:
        from mlflow.artifacts import download_artifacts

        where = f"MLflow model {mv.name} version {mv.version}"
        expected = mv.tags.get(TAG_SHA256)
        if not expected:
            raise RegistryError(
                f"{where} has no {TAG_SHA256} tag, so its artifact cannot be verified; "
                "load versions streamproc registered, or use your own loader"
            )
        source = self._client.get_model_version_download_uri(mv.name, mv.version)
        with tempfile.TemporaryDirectory(prefix="streamproc-mlflow-") as tmp:
            try:
                local = download_artifacts(
                    artifact_uri=f"{source.rstrip('/')}/{ARTIFACT_FILE}",
                    dst_path=tmp,
                    tracking_uri=self.tracking_uri,
                )
            except Exception as exc:
                raise RegistryError(
                    f"cannot download the artifact of {where} from {source} ({exc}); check that "
                    "the artifact store is reachable from here"
                ) from None
            data = Path(local).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected:
            raise RegistryError(
                f"artifact of {where} fails its checksum ({digest[:12]} != {expected[:12]}); "
                "it was modified or truncated in the artifact store: retrain or restore it."
            )
        return data

    def _log_metrics(self, run_id: str, metrics: dict[str, Any], created_ts: float) -> None:
        from mlflow.entities import Metric

        stamp = int(created_ts * 1000)
        numeric = [
            Metric(str(k)[:250], float(v), stamp, 0)
            for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        ]
        if numeric:
            self._client.log_batch(run_id, metrics=numeric)

    def _to_version(self, model_id: str, mv: Any) -> ModelVersion:
        tags = mv.tags
        try:
            metrics = orjson.loads(tags.get(TAG_METRICS, "{}"))
        except orjson.JSONDecodeError:
            metrics = {}
        return ModelVersion(
            model_id=tags.get(TAG_MODEL, model_id),
            version=tags.get(TAG_VERSION, str(mv.version)),
            artifact_uri=f"models:/{mv.name}/{mv.version}",
            sha256=tags.get(TAG_SHA256, ""),
            created_ts=float(tags.get(TAG_CREATED, mv.creation_timestamp / 1000)),
            parent_version=tags.get(TAG_PARENT),
            request_id=tags.get(TAG_REQUEST),
            metrics=metrics if isinstance(metrics, dict) else {},
        )


def _metrics_json(metrics: dict[str, Any]) -> str:
    text = orjson.dumps(metrics, option=orjson.OPT_SERIALIZE_NUMPY, default=str).decode()
    if len(text) <= MAX_METRICS_JSON:
        return text
    return orjson.dumps({"truncated": True, "chars": len(text)}).decode()
