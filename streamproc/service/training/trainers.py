"""Trainers that do I/O: a local command, or an external pipeline reached through a webhook.

A trainer is any callable ``TrainingJob -> Candidate`` that raises
:class:`~streamproc.core.retrain.TrainerError` on failure (``transient`` failures are worth
retrying). :class:`CommandTrainer` is one: it runs the user's program, gives it the job as JSON
on stdin, and reads the candidate back from its stdout. :class:`WebhookTrainer` is not: it only
*starts* training by POSTing the job to a URL; the external pipeline answers later by publishing
a retrain result, which :func:`candidate_from_result` turns into a candidate.
:func:`trainer_from_config` builds either from configuration.

Examples
--------
>>> retry_delays(5, base_s=1.0, cap_s=10.0)
[1.0, 2.0, 4.0, 8.0, 10.0]
>>> trainer_from_config("builtin", results_topic="retrain-results").__name__
'builtin_trainer'
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import orjson

from streamproc.core.events import RetrainResult
from streamproc.core.retrain import Candidate, TrainerError, TrainingJob, builtin_trainer
from streamproc.core.training import LEARNERS

__all__ = [
    "EX_TEMPFAIL",
    "CommandTrainer",
    "Trainer",
    "WebhookTrainer",
    "candidate_from_result",
    "job_json",
    "retry_delays",
    "trainer_from_config",
]

log = logging.getLogger(__name__)

Trainer = Callable[[TrainingJob], Candidate]

EX_TEMPFAIL: Final = 75
"""Exit status (sysexits.h) by which a training command says "try again later"."""

STDERR_TAIL_LINES: Final = 20
EXCERPT_CHARS: Final = 300
# A killed process group has this long to disappear before we stop waiting for its pipes.
KILL_GRACE_S: Final = 5.0

COMMAND_OUTPUT_FORMAT: Final = (
    'print one JSON object on stdout: {"artifact_path": "/path/to/model-file", '
    '"holdout_predictions": [one per holdout example, in order], "metrics": {optional}}; '
    "write logs to stderr"
)
RESULT_FORMAT: Final = (
    "publish a retrain result with metrics.holdout_predictions (one per holdout example, in "
    "order) and artifact_uri (top-level, or in metrics)"
)


# --------------------------------------------------------------------------- shared checks


def _excerpt(data: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + f"... [{len(text)} chars]"


def _is_prediction(v: object) -> bool:
    if isinstance(v, str | bool | int):
        return True
    return isinstance(v, float) and math.isfinite(v)


def _check_predictions(v: object, expected: int, where: str, fix: str) -> tuple[Any, ...]:
    """The holdout predictions as a tuple, or a TrainerError saying what is wrong with them.

    The gate compares each prediction with its label, so anything but one scalar per holdout
    example would be judged silently wrong rather than reported.
    """
    if not isinstance(v, list):
        raise TrainerError(
            f"{where}: 'holdout_predictions' must be a list, got {type(v).__name__}; {fix}"
        )
    if len(v) != expected:
        raise TrainerError(
            f"{where}: 'holdout_predictions' has {len(v)} predictions for {expected} holdout "
            f"examples; {fix}"
        )
    for i, p in enumerate(v):
        if not _is_prediction(p):
            raise TrainerError(
                f"{where}: holdout_predictions[{i}] is {_excerpt(repr(p), 80)}, not a class or a "
                f"finite number; predict one label per example (not probabilities). {fix}"
            )
    return tuple(v)


def job_json(obj: Any, job: TrainingJob) -> bytes:
    """``obj`` (a training job's JSON object, maybe wrapped for a trainer) as JSON bytes.

    Raises
    ------
    TrainerError
        A feature or label is not a JSON value: the message names the model and what to send.
    """
    try:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise TrainerError(
            f"the training job for {job.request.model_id} cannot be encoded as JSON ({exc}); "
            "features and labels must be JSON values"
        ) from None


# --------------------------------------------------------------------------- command


class CommandTrainer:
    """Train by running a local command: job JSON on stdin, one JSON object back on stdout.

    The command reads the job (``TrainingJob.to_json_obj()``) from stdin, trains, writes the
    model to a file, and prints ``{"artifact_path": ..., "holdout_predictions": [...],
    "metrics": {...}}``. The artifact's bytes are read back so the registry stores and checksums
    them itself. Exiting with status 75 (``EX_TEMPFAIL``) marks the failure as transient.

    Parameters
    ----------
    argv
        The program and its arguments; run directly, without a shell.
    timeout_s
        Wall-clock limit; the command's whole process group is killed when it is exceeded.
    env
        Variables added to (or overriding) this process's environment for the command.

    Examples
    --------
    >>> CommandTrainer(["python", "train.py"], timeout_s=60)
    CommandTrainer(['python', 'train.py'], timeout_s=60)
    """

    def __init__(
        self,
        argv: Sequence[str],
        timeout_s: float = 600,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError(
                "CommandTrainer argv must be a non-empty list of strings, "
                'e.g. ["python", "train.py"]; it is run without a shell'
            )
        if not timeout_s > 0:
            raise ValueError(f"CommandTrainer timeout_s must be positive, got {timeout_s}")
        self.argv = list(argv)
        self.timeout_s = timeout_s
        self.env = dict(env) if env is not None else None

    def __repr__(self) -> str:
        return f"CommandTrainer({self.argv!r}, timeout_s={self.timeout_s:g})"

    @property
    def name(self) -> str:
        """The command line as a person would type it, shortened for messages."""
        return _excerpt(shlex.join(self.argv), 120)

    def __call__(self, job: TrainingJob) -> Candidate:
        """Run the command on ``job`` and return its candidate.

        Raises
        ------
        TrainerError
            For every failure (and nothing else): timeout, non-zero exit (transient for exit
            status 75), malformed output, or a missing artifact file.
        """
        try:
            return self._run(job)
        except TrainerError:
            raise
        except Exception as exc:
            # The caller turns TrainerError into a "failed" result; anything else would kill
            # the worker thread, so even a bug here must surface as a failed retrain.
            log.exception("trainer command %s failed unexpectedly", self.name)
            raise TrainerError(f"trainer command {self.name} failed unexpectedly: {exc!r}") from exc

    def _run(self, job: TrainingJob) -> Candidate:
        payload = job_json(job.to_json_obj(), job)
        rid = job.request.request_id
        env = {**os.environ, **self.env} if self.env is not None else None
        started = time.monotonic()
        log.info("retrain %s: running trainer command %s", rid, self.name)
        try:
            proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                # Its own process group, so a timeout also kills whatever the command spawned
                # (data loaders, workers) instead of leaving them holding our pipes open.
                start_new_session=True,
            )
        except OSError as exc:
            raise TrainerError(
                f"trainer command {self.name} could not be started ({exc.strerror or exc}); "
                "check that the program exists and is executable"
            ) from None
        try:
            stdout, stderr = proc.communicate(payload, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            raise TrainerError(
                f"trainer command {self.name} timed out after {self.timeout_s:g} s; "
                "raise timeout_s or make it faster"
            ) from None
        finally:
            if proc.returncode is None:  # interrupted some other way: leave nothing behind
                self._kill(proc)
        elapsed = time.monotonic() - started
        if stderr:
            log.debug("trainer command %s stderr:\n%s", self.name, _tail(stderr, 200))
        if proc.returncode != 0:
            raise self._exit_error(proc.returncode, stderr)
        log.info("retrain %s: trainer command finished in %.1f s", rid, elapsed)
        return self._candidate(stdout, len(job.holdout))

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        # The leader is not reaped yet, so its pid (= the group id) cannot have been reused.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            proc.communicate(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            # A descendant escaped the group (its own session) and still holds a pipe;
            # give up on the pipes rather than wait for it.
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            proc.wait(timeout=KILL_GRACE_S)

    def _exit_error(self, code: int, stderr: bytes) -> TrainerError:
        if code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with status {code}"
        tail = _tail(stderr, STDERR_TAIL_LINES)
        detail = f"; last lines of stderr:\n{tail}" if tail else " and wrote nothing to stderr"
        transient = code == EX_TEMPFAIL
        if transient:
            how += " (EX_TEMPFAIL: will be retried)"
        return TrainerError(f"trainer command {self.name} {how}{detail}", transient=transient)

    def _candidate(self, stdout: bytes, holdout_len: int) -> Candidate:
        where = f"trainer command {self.name}"
        out = _parse_stdout(stdout, where)
        path = out.get("artifact_path")
        if not isinstance(path, str) or not path:
            got = "nothing" if path is None else _excerpt(repr(path), 80)
            raise TrainerError(
                f"{where}: 'artifact_path' is missing or not a non-empty string (got {got}); "
                f"{COMMAND_OUTPUT_FORMAT}"
            )
        if "holdout_predictions" not in out:
            raise TrainerError(
                f"{where}: 'holdout_predictions' is missing; {COMMAND_OUTPUT_FORMAT}"
            )
        preds = _check_predictions(
            out["holdout_predictions"], holdout_len, where, COMMAND_OUTPUT_FORMAT
        )
        metrics = out.get("metrics", {})
        if metrics is None:
            metrics = {}
        if not isinstance(metrics, dict):
            raise TrainerError(
                f"{where}: 'metrics' must be a JSON object, got {type(metrics).__name__}; "
                f"{COMMAND_OUTPUT_FORMAT}"
            )
        try:
            artifact = Path(path).read_bytes()
        except FileNotFoundError:
            raise TrainerError(
                f"{where}: artifact_path {path!r} does not exist; write the model file before "
                "printing its path (relative paths are relative to the worker's directory)"
            ) from None
        except OSError as exc:
            raise TrainerError(
                f"{where}: cannot read artifact_path {path!r} ({exc.strerror or exc}); "
                "point it at a readable file"
            ) from None
        return Candidate(preds, artifact=artifact, metrics=metrics)


def _tail(data: bytes, lines: int) -> str:
    text = data.decode("utf-8", errors="replace").rstrip()
    kept = text.splitlines()[-lines:]
    # One runaway line (a progress bar without newlines) must not flood the error message.
    return "\n".join(_excerpt(line, 500) for line in kept)


def _parse_stdout(stdout: bytes, where: str) -> dict[str, Any]:
    """The JSON object the command printed.

    Training libraries often print progress to stdout; when the whole output is not one JSON
    object, its last non-blank line is tried before giving up.
    """
    if not stdout.strip():
        raise TrainerError(f"{where} printed nothing on stdout; {COMMAND_OUTPUT_FORMAT}")
    candidates = [stdout]
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    if len(lines) > 1:
        candidates.append(lines[-1])
    for raw in candidates:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    raise TrainerError(
        f"{where}: stdout is not a JSON object (it starts {_excerpt(stdout, 120)!r}); "
        f"{COMMAND_OUTPUT_FORMAT}"
    )


# --------------------------------------------------------------------------- webhook


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would follow a redirect of a POST as a GET without the body: the job would be lost
    # while the request looked accepted. A redirect is reported instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookTrainer:
    """Start training in an external pipeline by POSTing the job to a URL.

    The body is the job JSON plus ``"callback": {"topic": results_topic, "key": model_id}``:
    the pipeline publishes its retrain result (same ``request_id``) there when training ends,
    and :func:`candidate_from_result` turns that result into a candidate.

    Parameters
    ----------
    url
        An ``http://`` or ``https://`` URL.
    timeout_s
        Socket timeout for connecting and for each read.
    token
        Sent as ``Authorization: Bearer <token>`` when given; never logged.
    results_topic
        The (physical) retrain-results topic the pipeline answers on.

    Examples
    --------
    >>> WebhookTrainer("https://ci.example/train", token="s3cret", results_topic="retrain-results")
    WebhookTrainer('https://ci.example/train', timeout_s=10, results_topic='retrain-results')
    """

    def __init__(
        self,
        url: str,
        timeout_s: float = 10,
        token: str | None = None,
        *,
        results_topic: str,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must start with http:// or https://, got {url!r}")
        if not timeout_s > 0:
            raise ValueError(f"webhook timeout_s must be positive, got {timeout_s}")
        if not results_topic:
            raise ValueError("webhook results_topic must be the retrain-results topic name")
        self.url = url
        self.timeout_s = timeout_s
        self.results_topic = results_topic
        self._token = token
        self._opener = urllib.request.build_opener(_NoRedirect)

    def __repr__(self) -> str:
        # The token stays out of reprs, which end up in logs.
        return (
            f"WebhookTrainer({self.url!r}, timeout_s={self.timeout_s:g}, "
            f"results_topic={self.results_topic!r})"
        )

    def body(self, job: TrainingJob) -> bytes:
        """The JSON the webhook receives: the job and where to publish the result."""
        obj = job.to_json_obj()
        obj["callback"] = {"topic": self.results_topic, "key": job.request.model_id}
        return job_json(obj, job)

    def start(self, job: TrainingJob) -> None:
        """POST the job; return once the webhook has accepted it (any 2xx).

        Raises
        ------
        TrainerError
            Transient for connection errors, timeouts, 5xx and 429; otherwise (other 4xx, 3xx)
            non-transient, with the status and an excerpt of the answer.
        """
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        headers.update(self.auth_headers())
        req = urllib.request.Request(self.url, self.body(job), headers=headers, method="POST")
        rid = job.request.request_id
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                status = resp.status
                resp.read(EXCERPT_CHARS)
        except urllib.error.HTTPError as exc:
            if self.already_started(exc):
                exc.close()
                log.info("retrain %s: %s already has this run (HTTP 409)", rid, self.url)
                return
            raise self._status_error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            # Covers refused connections, DNS failures, resets and timeouts: the endpoint may
            # be back in a moment.
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise TrainerError(
                f"webhook {self.url} unreachable ({reason}); will retry", transient=True
            ) from None
        except Exception as exc:
            # http.client protocol errors and the like: the caller expects TrainerError only.
            raise TrainerError(
                f"webhook {self.url} failed ({exc!r}); will retry", transient=True
            ) from None
        log.info("retrain %s: webhook %s accepted the job (HTTP %s)", rid, self.url, status)

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header (none without a token)."""
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def already_started(self, exc: urllib.error.HTTPError) -> bool:
        """True when the answer means this job's run exists already (a redelivered job)."""
        return False

    def _status_error(self, exc: urllib.error.HTTPError) -> TrainerError:
        try:
            body = _excerpt(exc.read(EXCERPT_CHARS * 2))
        except Exception:
            body = ""
        finally:
            exc.close()
        said = f": {body}" if body else ""
        code = exc.code
        if code == 429 or code >= 500:
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
            hint = f" (Retry-After: {retry_after})" if retry_after else ""
            return TrainerError(
                f"webhook {self.url} answered HTTP {code}{hint}{said}; will retry", transient=True
            )
        if 300 <= code < 400:
            where = exc.headers.get("Location") if exc.headers else None
            return TrainerError(
                f"webhook {self.url} answered HTTP {code} redirecting to {where}; "
                "configure the final URL (redirected POSTs would lose the job)"
            )
        fix = {
            401: "check the token (token_env)",
            403: "check the token's permissions",
            404: "check the URL",
        }.get(code, "fix the request the webhook rejected")
        return TrainerError(f"webhook {self.url} rejected the job with HTTP {code}{said}; {fix}")


def candidate_from_result(result: RetrainResult, holdout_len: int) -> Candidate:
    """The candidate an external pipeline reported in its retrain result.

    Parameters
    ----------
    result
        The pipeline's result on retrain-results, for the request the webhook started.
    holdout_len
        How many holdout examples the job had (and so how many predictions are expected).

    Returns
    -------
    Candidate
        With ``artifact_uri`` (the registry does not copy external artifacts) and the
        pipeline's other metrics; ``holdout_predictions`` and ``artifact_uri`` are taken out of
        the metrics so they are not republished with every result.

    Raises
    ------
    TrainerError
        Non-transient, when the result says training failed or was rejected, or lacks
        ``metrics.holdout_predictions`` or ``artifact_uri``.
    """
    where = f"external retrain result {result.request_id} for {result.model_id}"
    if result.status == "failed":
        raise TrainerError(f"{where}: training failed: {result.error or '(no error text given)'}")
    if result.status == "rejected":
        why = f": {result.error}" if result.error else ""
        raise TrainerError(f"{where}: the external pipeline rejected its own candidate{why}")
    metrics = dict(result.metrics)
    if "holdout_predictions" not in metrics:
        raise TrainerError(f"{where} lacks metrics.holdout_predictions; {RESULT_FORMAT}")
    preds = _check_predictions(
        metrics.pop("holdout_predictions"), holdout_len, where, RESULT_FORMAT
    )
    top = result.extra.get("artifact_uri")
    nested = metrics.pop("artifact_uri", None)
    uri = top if top is not None else nested
    if not isinstance(uri, str) or not uri:
        got = "" if uri is None else f" (got {_excerpt(repr(uri), 80)})"
        raise TrainerError(f"{where} lacks an artifact_uri{got}; {RESULT_FORMAT}")
    return Candidate(preds, artifact_uri=uri, metrics=metrics)


# --------------------------------------------------------------------------- configuration

_KEYS: Final = {
    "builtin": {"kind", "learner"},
    "command": {"kind", "argv", "timeout_s", "env"},
    "webhook": {"kind", "url", "timeout_s", "token_env"},
    "airflow": {
        "kind", "url", "dag_id", "api_version", "timeout_s", "username_env", "password_env",
        "token_env",
    },
    "kubeflow": {
        "kind", "url", "pipeline_id", "pipeline_version_id", "experiment_id", "parameter",
        "timeout_s", "token_env",
    },
}  # fmt: skip


def _timeout(cfg: Mapping[str, Any], kind: str, default: float) -> float:
    v = cfg.get("timeout_s", default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not (math.isfinite(v) and v > 0):
        raise ValueError(f"trainer {kind}: 'timeout_s' must be a positive number of seconds")
    return float(v)


def trainer_from_config(
    cfg: Mapping[str, Any] | str, results_topic: str
) -> Trainer | WebhookTrainer:
    """Build the trainer a configuration names.

    Parameters
    ----------
    cfg
        ``"builtin"`` (or ``{"kind": "builtin"}``; ``{"kind": "builtin", "learner": "tree"}``
        for a Hoeffding tree instead of the default logistic regression);
        ``{"kind": "command", "argv": [...], "timeout_s": 600, "env": {...}}``; or
        ``{"kind": "webhook", "url": ..., "timeout_s": 10, "token_env": "NAME"}``, the bearer
        token read from environment variable ``NAME``; ``{"kind": "airflow", ...}`` or
        ``{"kind": "kubeflow", ...}`` (:mod:`streamproc.service.training.orchestrators`).
    results_topic
        The retrain-results topic a webhook pipeline should answer on.

    Returns
    -------
    Trainer | WebhookTrainer
        :func:`~streamproc.core.retrain.builtin_trainer`, a :class:`CommandTrainer`, or a
        :class:`WebhookTrainer` (which starts jobs rather than returning candidates).

    Raises
    ------
    ValueError
        For an unknown kind, a missing or malformed key, or an unset token variable.
    """
    if isinstance(cfg, str):
        cfg = {"kind": cfg}
    if not isinstance(cfg, Mapping):
        raise ValueError(
            f'trainer config must be "builtin" or an object with a "kind", got {type(cfg).__name__}'
        )
    kind = cfg.get("kind")
    if kind not in _KEYS:
        raise ValueError(
            f"trainer kind {kind!r} is unknown; use one of {sorted(_KEYS)} "
            '(e.g. {"kind": "command", "argv": ["python", "train.py"]})'
        )
    unknown = set(cfg) - _KEYS[kind]
    if unknown:
        raise ValueError(
            f"trainer {kind}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS[kind])}"
        )
    if kind == "builtin":
        learner = cfg.get("learner", LEARNERS[0])
        if learner not in LEARNERS:
            raise ValueError(
                f"trainer builtin: 'learner' must be one of {LEARNERS}, got {learner!r}"
            )
        if learner == LEARNERS[0]:
            return builtin_trainer
        return functools.partial(builtin_trainer, learner=learner)
    if kind in ("airflow", "kubeflow"):
        from streamproc.service.training.orchestrators import orchestrator_from_config

        return orchestrator_from_config(cfg, results_topic, _timeout(cfg, kind, 10))
    if kind == "command":
        argv = cfg.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError(
                "trainer command: 'argv' is required, a non-empty list of strings "
                '(e.g. ["python", "train.py"]); it is run without a shell'
            )
        env = cfg.get("env")
        if env is not None and not (
            isinstance(env, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        ):
            raise ValueError("trainer command: 'env' must map variable names to string values")
        return CommandTrainer(argv, timeout_s=_timeout(cfg, kind, 600), env=env)
    url = cfg.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError("trainer webhook: 'url' is required, an http:// or https:// URL")
    token = None
    token_env = cfg.get("token_env")
    if token_env is not None:
        if not isinstance(token_env, str) or not token_env:
            raise ValueError("trainer webhook: 'token_env' must name an environment variable")
        token = os.environ.get(token_env)
        if not token:
            raise ValueError(
                f"trainer webhook: environment variable {token_env} (token_env) is not set or "
                "empty; export the bearer token in it, or remove token_env"
            )
    return WebhookTrainer(
        url, timeout_s=_timeout(cfg, kind, 10), token=token, results_topic=results_topic
    )


def retry_delays(attempts: int = 3, base_s: float = 1.0, cap_s: float = 30.0) -> list[float]:
    """Seconds to wait before each retry: doubling from ``base_s``, never above ``cap_s``.

    Deterministic (no jitter), so a replayed run retries at the same moments.

    Examples
    --------
    >>> retry_delays()
    [1.0, 2.0, 4.0]
    >>> retry_delays(0)
    []
    """
    if attempts < 0 or base_s < 0 or cap_s < 0:
        raise ValueError("retry_delays: attempts, base_s and cap_s must not be negative")
    out: list[float] = []
    delay = float(base_s)
    for _ in range(attempts):
        out.append(min(delay, float(cap_s)))
        # Stop doubling once capped, so huge attempt counts cannot overflow to inf.
        delay = min(delay * 2, float(cap_s))
    return out
