"""Trigger policy: which signals each model watches, with which detectors, and when to act.

A policy file is TOML. ``[default]`` applies to every model; each ``[[model]]`` table applies to
the model ids its ``match`` glob matches (first match wins) and overrides the defaults it names.
With no file, :data:`DEFAULT_POLICY` applies: the seed's rule (metric ``drift`` above 0.1) and a
CUSUM on the error rate of predictions joined with their labels.

.. code-block:: toml

    [default]
    cooldown_s = 0            # event-time seconds after a request in which no new one is made
    training_window = 1000    # labelled examples kept per model for retraining
    training_window_bytes = 3145728   # ... and at most this many bytes of them (JSON size)
    join = { ttl_s = 86400, max_pending = 2000, max_early = 2000, max_bytes = 3145728 }
    metrics = [{ name = "drift", above = 0.1 }]
    metric_change = { detector = "rank_cp", metrics = ["*"], warmup = 20, window = 100 }  # or false
    task = "auto"             # or "classification" / "regression" (streamproc.core.errors)
    error = { detector = "cusum", warmup = 1000, shift = 0.5, arl = 1e6, loss = "absolute" }
    rollback = { min_samples = 200, max_samples = 5000, z = 3.7 }   # or false
    label_shift = true        # classifiers: a change of the labels' class frequencies is a signal
    trainer = "builtin"       # or { kind = "command" | "webhook" | "airflow" | "kubeflow", ... }
                              # or { kind = "builtin", learner = "tree" } (default "logistic")

    [[model]]
    match = "fraud-*"
    metrics = [{ name = "drift", above = 0.2 }, { name = "auc", below = 0.7 }]

Examples
--------
>>> book = load_policy_text('''
... [[model]]
... match = "fraud-*"
... metrics = [{ name = "drift", above = 0.2 }]
... ''')
>>> book.for_model("fraud-eu").metric_rules[0].above
0.2
>>> book.for_model("churn").metric_rules[0].above
0.1
"""

from __future__ import annotations

import fnmatch
import functools
import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from streamproc.core.detect import Detector, make_detector, parameters
from streamproc.core.errors import LOSSES, TASKS
from streamproc.core.exceptions import StreamprocError
from streamproc.core.identifiers import IdentifierScreen

# The smallest holdout the gate judges a candidate on (see streamproc.core.gate).
MIN_HOLDOUT = 30

__all__ = [
    "DEFAULT_POLICY",
    "DriftRule",
    "ErrorRule",
    "JoinLimits",
    "MetricChangeRule",
    "MetricRule",
    "Policy",
    "PolicyBook",
    "PolicyError",
    "RollbackRule",
    "load_policy",
    "load_policy_text",
]


class PolicyError(StreamprocError, ValueError):
    """A policy file that cannot be used; the message names the key and the fix."""


@dataclass(frozen=True, slots=True)
class MetricRule:
    """Fire when the reported metric ``name`` is above ``above`` or below ``below``."""

    name: str
    above: float | None = None
    below: float | None = None

    def detector(self) -> Detector:
        return make_detector("threshold", above=self.above, below=self.below)


@dataclass(frozen=True, slots=True)
class MetricChangeRule:
    """A change detector on each reported metric's own series, besides its thresholds.

    For low-rate metrics (hourly accuracy, a daily drift score): ``rank_cp``
    (:mod:`streamproc.core.detect.seriescp`) starts after ``warmup`` values (20) and fires on a
    level shift of the metric's recent values, whatever their scale, without a threshold to choose.
    On by default for every metric (``metrics`` globs); ``metric_change = false`` turns it off.
    """

    detector: str = "rank_cp"
    params: tuple[tuple[str, Any], ...] = (
        ("alpha", 1e-3),
        ("min_segment", 5),
        ("warmup", 20),
        ("window", 100),
    )
    metrics: tuple[str, ...] = ("*",)  # globs of the metric names to watch

    def make(self) -> Detector:
        return make_detector(self.detector, **dict(self.params))

    def watches(self, name: str) -> bool:
        return _matches(name, self.metrics)


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """An online detector on the error of predictions joined with their labels.

    Classification errors (0/1) go to ``detector`` with ``params`` (the Bernoulli CUSUM by
    default). Regression errors (absolute, or squared with ``loss = "squared"``) go to the
    ``regression`` spec, by default the policy's numeric drift detector (whatever kind
    :class:`DriftRule` names), reporting rises only
    (:class:`~streamproc.core.detect.rising.RisingOnly`).
    """

    detector: str = "cusum"
    params: tuple[tuple[str, Any], ...] = (("warmup", 1000), ("shift", 0.5), ("arl", 1e6))
    loss: str = "absolute"
    regression: tuple[tuple[str, Any], ...] | None = None  # None: the numeric drift default

    def make(
        self, task: str = "classification", numeric: tuple[tuple[str, Any], ...] | None = None
    ) -> Detector:
        """The detector for the model's task; ``numeric`` is the policy's numeric drift spec."""
        if task == "regression":
            spec = self.regression or numeric or DriftRule().numeric
            return make_detector("rising_only", inner=dict(spec))
        return make_detector(self.detector, **dict(self.params))


@dataclass(frozen=True, slots=True)
class RollbackRule:
    """Roll a promotion back when the new version's live error is significantly worse."""

    min_samples: int = 200
    max_samples: int = 5000
    z: float = 3.7
    baseline_n: int = 500  # previous version's most recent errors that form the baseline


@dataclass(frozen=True, slots=True)
class DriftRule:
    """Label-free drift of inputs (each feature) and outputs (prediction, score).

    Each watched value gets a detector against a reference captured after each deployment:
    numbers the mean/variance/missing-rate CUSUMs on normal scores of ranks of
    :mod:`streamproc.core.detect.ranks` (distribution-free: the false-alarm rate does not depend on
    the data's shape), categories the adaptive multinomial CUSUM of
    :mod:`streamproc.core.detect.multinomial`. A key missing from a prediction's features counts
    as a missing value, like ``null``. With many features, an alarm counts only if it
    survives Bonferroni across the model's m watched values (``p * m <= alpha`` for tests,
    ``statistic >= ln(arl * m)`` for CUSUMs).
    """

    numeric: tuple[tuple[str, Any], ...] = (
        ("detector", "rank_cusum"),
        ("warmup", 1000),
        ("arl", 1e6),
    )
    categorical: tuple[tuple[str, Any], ...] = (
        ("detector", "multinomial_cusum"),
        ("warmup", 1000),
        ("arl", 1e6),
    )
    features: tuple[str, ...] = ("*",)  # globs of feature names to watch
    outputs: bool = True  # also watch the prediction and score distributions
    # Identifier-like text features (nearly every value distinct: e-mails, user ids) are not
    # watched as categories: their lengths are ("length"), or they are skipped and counted
    # ("skip"); "watch" treats them as any category (:mod:`streamproc.core.identifiers`).
    identifiers: str = "length"
    identifier_probe: int = 500  # values of a text feature looked at before deciding
    identifier_distinct: float = 0.95  # distinct fraction from which it is an identifier

    def make(self, value: Any, output: bool = False) -> Detector:
        """A detector suited to ``value``: categorical for strings and booleans, else numeric.

        An integer *output* is a class label (categorical); an integer *feature* is a count.
        """
        categorical = isinstance(value, str | bool) or (output and isinstance(value, int))
        spec = dict(self.categorical if categorical else self.numeric)
        return make_detector(spec.pop("detector"), **spec)

    def watches(self, feature: str) -> bool:
        return _matches(feature, self.features)


@functools.lru_cache(maxsize=65536)
def _matches(name: str, globs: tuple[str, ...]) -> bool:
    # Asked for every feature of every prediction: the answer is cached per (name, globs).
    return any(fnmatch.fnmatchcase(name, g) for g in globs)


@dataclass(frozen=True, slots=True)
class JoinLimits:
    """Bounds of the delayed-label join, per model; what they evict is counted."""

    ttl_s: float = 86400.0  # event-time seconds a prediction waits for its label
    max_pending: int = 2000  # predictions waiting at most
    # Labels waiting for a prediction not seen yet: a label record from the SDK (1,000 events by
    # default) can reach the worker before its prediction record; this holds two of them.
    max_early: int = 2000
    # Bytes (JSON size) of both buffers together: a wide model's predictions are large, and the
    # buffers are part of the model's snapshot, which must fit a Kafka record.
    max_bytes: int = 3 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything that decides when one model is retrained."""

    name: str = "default"
    # "classification", "regression", or "auto": inferred from the labels (streamproc.core.errors)
    task: str = "auto"
    metric_rules: tuple[MetricRule, ...] = (MetricRule("drift", above=0.1),)
    metric_change: MetricChangeRule | None = field(default_factory=lambda: MetricChangeRule())
    error: ErrorRule | None = field(default_factory=ErrorRule)
    rollback: RollbackRule | None = field(default_factory=RollbackRule)
    # How candidates are trained: None is the built-in river trainer (its default learner);
    # else a table such as {kind = "builtin", learner = "tree"}, {kind = "command",
    # argv = [...]} or {kind = "webhook", url = "..."}
    # (streamproc.service.training.trainers).
    trainer: tuple[tuple[str, Any], ...] | None = None
    cooldown_s: float = 0.0
    training_window: int = 1000  # labelled examples kept per model for retraining
    training_window_bytes: int = 3 * 1024 * 1024  # ... and at most this many bytes of them
    drift: DriftRule | None = field(default_factory=lambda: DriftRule())
    # Classification models: also watch the class frequencies of the labels (label shift), with
    # the drift rule's categorical detector (so ``drift = false`` turns it off too). A change of
    # concept can leave the served error where it was while the classes move (river's Agrawal,
    # function 2 -> 4: 54% -> 20% positives, accuracy 0.57 before and after; a model retrained
    # on the new concept reached 0.80): no error detector can see that.
    label_shift: bool = True
    confirm: tuple[int, int] = (1, 1)  # k alarms of one signal within its last n samples
    quorum: str | int = "any"  # "any", "all", or how many signals must be active at once
    quorum_window_s: float = 3600.0  # how long a confirmed alarm stays active for the quorum
    warmup_events: int = 0  # predictions of a version before it may be retrained
    min_samples: int = 0  # samples a detector must have seen for its alarm to count
    budget: tuple[int, float] | None = None  # at most this many requests per period (s)
    max_age_s: float = 0.0  # scheduled fallback: retrain a version this old (0: never)
    max_events: int = 0  # scheduled fallback: retrain after this many predictions (0: never)
    # A version trained on fewer labelled examples than this is retrained once it has answered
    # that many itself (0: never): the first model after a change learns from little data.
    refit_examples: int = 500
    # An error alarm waits until this many labelled examples exist since the estimated change,
    # plus MIN_HOLDOUT for the gate, so the retrain learns the new concept rather than the old.
    min_train_examples: int = 50
    join: JoinLimits = field(default_factory=lambda: JoinLimits())
    # A request that produced no deployment or result by then no longer mutes new requests.
    pending_timeout_s: float = 3600.0


DEFAULT_POLICY = Policy()


@dataclass(frozen=True, slots=True)
class PolicyBook:
    """The default policy plus per-pattern overrides; :meth:`for_model` picks one."""

    default: Policy = DEFAULT_POLICY
    overrides: tuple[tuple[str, Policy], ...] = ()

    def for_model(self, model_id: str) -> Policy:
        for pattern, policy in self.overrides:
            if fnmatch.fnmatchcase(model_id, pattern):
                return policy
        return self.default


# --------------------------------------------------------------------------- loading

_POLICY_KEYS = {
    "name",
    "metrics",
    "metric_change",
    "error",
    "rollback",
    "trainer",
    "cooldown_s",
    "pending_timeout_s",
    "training_window",
    "training_window_bytes",
    "join",
    "drift",
    "confirm",
    "quorum",
    "quorum_window_s",
    "warmup_events",
    "min_samples",
    "budget",
    "schedule",
    "refit_examples",
    "label_shift",
    "match",
    "task",
}


def load_policy(path: str | Path | None) -> PolicyBook:
    """Load a policy file; ``None`` gives the default policy."""
    if path is None:
        return PolicyBook()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {p}: {exc.strerror}; check the path.") from None
    return load_policy_text(text, origin=str(p))


def load_policy_text(text: str, origin: str = "policy") -> PolicyBook:
    """Parse policy TOML text into a :class:`PolicyBook`."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{origin} is not valid TOML ({exc}); fix the syntax.") from None
    unknown = set(doc) - {"default", "model"}
    if unknown:
        raise PolicyError(
            f"{origin}: unknown top-level keys {sorted(unknown)}; use [default] and [[model]]."
        )
    default_table = doc.get("default", {})
    if not isinstance(default_table, dict):
        raise PolicyError(f"{origin}: 'default' must be a table: write [default] on its own line.")
    default = _policy(default_table, DEFAULT_POLICY, f"{origin} [default]")
    models = doc.get("model", [])
    if not isinstance(models, list) or not all(isinstance(t, dict) for t in models):
        raise PolicyError(
            f"{origin}: 'model' must be an array of tables: write [[model]] (double brackets)."
        )
    overrides = []
    for i, table in enumerate(models):
        where = f"{origin} [[model]] #{i + 1}"
        match = table.get("match")
        if not isinstance(match, str) or not match:
            raise PolicyError(
                f"{where}: 'match' is missing; give a model id or glob like 'fraud-*'."
            )
        base = replace(default, name=table.get("name", match))
        overrides.append((match, _policy(table, base, where)))
    return PolicyBook(default=default, overrides=tuple(overrides))


def _policy(table: dict[str, Any], base: Policy, where: str) -> Policy:
    unknown = set(table) - _POLICY_KEYS
    if unknown:
        raise PolicyError(
            f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_POLICY_KEYS)}."
        )
    changes: dict[str, Any] = {}
    if "name" in table:
        changes["name"] = str(table["name"])
    if "metrics" in table:
        if not isinstance(table["metrics"], list):
            raise PolicyError(
                f"{where}: 'metrics' must be a list like [{{ name = 'drift', above = 0.1 }}]."
            )
        changes["metric_rules"] = tuple(_metric_rule(m, where) for m in table["metrics"])
    if "metric_change" in table:
        changes["metric_change"] = _metric_change(table["metric_change"], where)
    if "error" in table:
        changes["error"] = _error_rule(table["error"], where)
    if "task" in table:
        if table["task"] not in TASKS:
            raise PolicyError(
                f'{where}: task must be one of {list(TASKS)} ("auto" infers it from the '
                f"labels), got {table['task']!r}."
            )
        changes["task"] = table["task"]
    if "trainer" in table:
        changes["trainer"] = _trainer(table["trainer"], where)
    if "label_shift" in table:
        if not isinstance(table["label_shift"], bool):
            raise PolicyError(f"{where}: label_shift must be true or false.")
        changes["label_shift"] = table["label_shift"]
    if "rollback" in table:
        changes["rollback"] = _rollback_rule(table["rollback"], where)
    if "training_window" in table:
        changes["training_window"] = _count(table["training_window"], f"{where} training_window")
    if "training_window_bytes" in table:
        changes["training_window_bytes"] = _count(
            table["training_window_bytes"], f"{where} training_window_bytes"
        )
    if "join" in table:
        changes["join"] = _join(table["join"], where)
    if "drift" in table:
        changes["drift"] = _drift(table["drift"], where, base.drift)
    if "confirm" in table:
        c = table["confirm"]
        _no_unknown_keys(c, ("k", "n"), f"{where}: confirm")
        if not isinstance(c, dict) or set(c) - {"k", "n"}:
            raise PolicyError(f"{where}: 'confirm' must be a table like {{ k = 2, n = 500 }}.")
        k, n = (
            _count(c.get("k", 1), f"{where} confirm.k"),
            _count(c.get("n", 1), f"{where} confirm.n"),
        )
        if n < k:
            raise PolicyError(
                f"{where}: confirm needs n >= k (k alarms within the last n samples)."
            )
        changes["confirm"] = (k, n)
    if "quorum" in table:
        q = table["quorum"]
        if q not in ("any", "all") and not (
            isinstance(q, int) and not isinstance(q, bool) and q >= 1
        ):
            raise PolicyError(f'{where}: quorum must be "any", "all" or a whole number >= 1.')
        changes["quorum"] = q
    if "budget" in table:
        b = table["budget"]
        _no_unknown_keys(b, ("max", "per_s"), f"{where}: budget")
        if not isinstance(b, dict) or set(b) - {"max", "per_s"}:
            raise PolicyError(
                f"{where}: 'budget' must be a table like {{ max = 3, per_s = 86400 }}."
            )
        changes["budget"] = (
            _count(b.get("max"), f"{where} budget.max"),
            _non_negative(b.get("per_s"), f"{where} budget.per_s"),
        )
    if "schedule" in table:
        sch = table["schedule"]
        _no_unknown_keys(sch, ("max_age_s", "max_events"), f"{where}: schedule")
        if not isinstance(sch, dict) or set(sch) - {"max_age_s", "max_events"}:
            raise PolicyError(f"{where}: 'schedule' takes max_age_s and max_events.")
        changes["max_age_s"] = _non_negative(sch.get("max_age_s", 0.0), f"{where} max_age_s")
        changes["max_events"] = int(_non_negative(sch.get("max_events", 0), f"{where} max_events"))
    for key in ("warmup_events", "min_samples", "refit_examples"):
        if key in table:
            changes[key] = int(_non_negative(table[key], f"{where} {key}"))
    if "quorum_window_s" in table:
        changes["quorum_window_s"] = _non_negative(
            table["quorum_window_s"], f"{where} quorum_window_s"
        )
    for key in ("cooldown_s", "pending_timeout_s"):
        if key in table:
            changes[key] = _non_negative(table[key], f"{where} {key}")
    return replace(base, **changes)


def _metric_rule(m: Any, where: str) -> MetricRule:
    if not isinstance(m, dict) or not isinstance(m.get("name"), str):
        raise PolicyError(
            f"{where}: each metrics entry needs a name, like {{ name = 'drift', above = 0.1 }}."
        )
    extra = set(m) - {"name", "above", "below"}
    if extra:
        raise PolicyError(f"{where}: metric {m['name']!r} has unknown keys {sorted(extra)}.")
    above, below = m.get("above"), m.get("below")
    if above is None and below is None:
        raise PolicyError(f"{where}: metric {m['name']!r} needs 'above' or 'below'.")
    for v in (above, below):
        if v is not None and not _is_finite_number(v):
            raise PolicyError(f"{where}: metric {m['name']!r} thresholds must be finite numbers.")
    return MetricRule(m["name"], above=above, below=below)


def _metric_change(c: Any, where: str) -> MetricChangeRule | None:
    if c is False:
        return None
    if not isinstance(c, dict):
        raise PolicyError(
            f"{where}: 'metric_change' must be false or a table like "
            "{ detector = 'rank_cp', metrics = ['accuracy'], warmup = 20 }."
        )
    metrics = c.get("metrics", ["*"])
    if not isinstance(metrics, list) or not all(isinstance(g, str) for g in metrics):
        raise PolicyError(f'{where}: metric_change.metrics must be a list of globs like ["*"].')
    base = MetricChangeRule()
    detector = c.get("detector", base.detector)
    if not isinstance(detector, str):
        raise PolicyError(f"{where}: metric_change.detector must be a name like 'rank_cp'.")
    given = {k: v for k, v in c.items() if k not in ("detector", "metrics")}
    for k, v in given.items():
        if isinstance(v, bool) or not _is_finite_number(v):
            raise PolicyError(
                f"{where}: metric_change parameter {k} = {v!r} is not a usable number."
            )
    params = {**dict(base.params), **given} if detector == base.detector else given
    rule = MetricChangeRule(detector, tuple(sorted(params.items())), tuple(metrics))
    try:
        rule.make()
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{where}: metric_change detector is not valid: {exc}") from None
    return rule


def _error_rule(e: Any, where: str) -> ErrorRule | None:
    if e is False or e == {}:
        return None
    if not isinstance(e, dict):
        raise PolicyError(
            f"{where}: 'error' must be a table like {{ detector = 'cusum' }} or false."
        )
    params = {k: v for k, v in e.items() if k not in ("detector", "loss", "regression")}
    loss = e.get("loss", "absolute")
    if loss not in LOSSES:
        raise PolicyError(
            f"{where}: error.loss must be one of {list(LOSSES)} (regression errors), got {loss!r}."
        )
    regression = e.get("regression")
    if regression is not None and not (
        isinstance(regression, dict) and isinstance(regression.get("detector"), str)
    ):
        raise PolicyError(
            f"{where}: error.regression must be a table like {{ detector = 'page_hinkley' }}."
        )
    for k, v in params.items():
        if isinstance(v, bool) or (isinstance(v, float) and not math.isfinite(v)):
            raise PolicyError(
                f"{where}: error detector parameter {k} = {v!r} is not a usable number."
            )
    rule = ErrorRule(
        detector=str(e.get("detector", "cusum")),
        params=tuple(sorted(params.items())),
        loss=loss,
        regression=tuple(sorted(regression.items())) if regression else None,
    )
    _check_keys(
        (("detector", rule.detector), *rule.params), f"{where}: error detector is not valid"
    )
    try:
        rule.make()
        rule.make("regression")
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{where}: error detector is not valid: {exc}") from None
    return rule


def _trainer(t: Any, where: str) -> tuple[tuple[str, Any], ...] | None:
    if t == "builtin":
        return None
    kinds = ("builtin", "command", "webhook", "airflow", "kubeflow")
    if not isinstance(t, dict) or t.get("kind") not in kinds:
        raise PolicyError(
            f"{where}: 'trainer' must be \"builtin\" or a table with kind = one of {kinds}."
        )
    if t["kind"] == "command" and not (isinstance(t.get("argv"), list) and t["argv"]):
        raise PolicyError(f'{where}: a command trainer needs argv = ["program", "arg", ...].')
    if t["kind"] == "webhook" and not isinstance(t.get("url"), str):
        raise PolicyError(f'{where}: a webhook trainer needs url = "https://...".')
    # A builtin table with settings (learner) is kept; the worker validates it at start.
    return tuple(sorted(t.items())) if t["kind"] != "builtin" or len(t) > 1 else None


def _rollback_rule(r: Any, where: str) -> RollbackRule | None:
    if r is False:
        return None
    if not isinstance(r, dict):
        raise PolicyError(
            f"{where}: 'rollback' must be a table like {{ min_samples = 200 }} or false."
        )
    try:
        rule = RollbackRule(**r)
    except TypeError as exc:
        raise PolicyError(
            f"{where}: rollback has unknown keys ({exc}); use min_samples, "
            "max_samples, z, baseline_n."
        ) from None
    if rule.min_samples < 10 or rule.max_samples < rule.min_samples or rule.z <= 0:
        raise PolicyError(
            f"{where}: rollback needs min_samples >= 10, max_samples >= min_samples, z > 0."
        )
    return rule


def _drift(d: Any, where: str, inherited: DriftRule | None = None) -> DriftRule | None:
    if d is False:
        return None
    _no_unknown_keys(d, ("numeric", "categorical", "features", "outputs", *_ID), f"{where}: drift")
    if not isinstance(d, dict) or set(d) - {"numeric", "categorical", "features", "outputs", *_ID}:
        raise PolicyError(
            f"{where}: 'drift' must be false or a table of numeric, categorical, features, "
            "outputs, identifiers, identifier_probe, identifier_distinct."
        )
    base = inherited or DriftRule()  # a [[model]] table refines the [default] one
    changes: dict[str, Any] = {}
    for key in ("numeric", "categorical"):
        if key in d:
            spec = d[key]
            if not isinstance(spec, dict) or not isinstance(spec.get("detector", "x"), str):
                raise PolicyError(
                    f"{where}: drift.{key} must be a table like {{ detector = 'ks' }}."
                )
            changes[key] = tuple(sorted(_detector_spec(dict(getattr(base, key)), spec).items()))
            _check_keys(changes[key], f"{where}: drift.{key}")
    if "features" in d:
        f = d["features"]
        if not isinstance(f, list) or not all(isinstance(g, str) for g in f):
            raise PolicyError(f'{where}: drift.features must be a list of globs like ["*"].')
        changes["features"] = tuple(f)
    if "outputs" in d:
        changes["outputs"] = bool(d["outputs"])
    changes.update(_identifier_changes(d, where))
    rule = replace(base, **changes)
    for sample in (0.0, "a"):
        try:
            rule.make(sample)
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"{where}: drift detector is not valid: {exc}") from None
    return rule


def _no_unknown_keys(table: Any, known: tuple[str, ...], where: str) -> None:
    """Name the keys of ``table`` that are not ``known``, as the user wrote them."""
    if isinstance(table, dict):
        unknown = sorted(k for k in table if k not in known)
        if unknown:
            raise PolicyError(
                f"{where} has no key {', '.join(repr(k) for k in unknown)}; fix the spelling "
                f"or remove it (it takes {list(known)})."
            )


def _detector_spec(base: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """The user's detector table over the defaults of the kind it names.

    Naming another kind starts from that kind's own defaults: the default detector's parameters
    (say the CUSUM's ``arl``) mean nothing to a KS test.
    """
    if spec.get("detector", base["detector"]) != base["detector"]:
        return dict(spec)
    return {**base, **spec}


def _check_keys(spec: tuple[tuple[str, Any], ...], where: str) -> None:
    """Name a parameter the chosen detector does not take, as the user wrote it."""
    kind = dict(spec).get("detector")
    if not isinstance(kind, str):
        return
    try:
        known = parameters(kind)
    except ValueError as exc:
        raise PolicyError(f"{where}: {exc}") from None
    unknown = sorted(k for k, _ in spec if k != "detector" and k not in known)
    if unknown:
        raise PolicyError(
            f"{where}: detector {kind!r} has no parameter "
            f"{', '.join(repr(k) for k in unknown)}; fix the spelling or remove it "
            f"(it takes {sorted(known)})."
        )


_ID = ("identifiers", "identifier_probe", "identifier_distinct")


def _identifier_changes(d: dict[str, Any], where: str) -> dict[str, Any]:
    """The drift table's identifier settings, checked by the screen that will use them."""
    changes = {k: d[k] for k in _ID if k in d}
    if not changes:
        return changes
    rule = replace(DriftRule(), **changes)
    try:
        IdentifierScreen(rule.identifier_probe, rule.identifier_distinct, rule.identifiers)
    except (TypeError, ValueError) as exc:
        raise PolicyError(
            f'{where}: drift identifiers are not valid ({exc}); e.g. identifiers = "length" '
            '(or "skip", "watch"), identifier_probe = 500, identifier_distinct = 0.95.'
        ) from None
    return changes


def _join(j: Any, where: str) -> JoinLimits:
    _no_unknown_keys(j, ("ttl_s", "max_pending", "max_early", "max_bytes"), f"{where}: join")
    if not isinstance(j, dict) or set(j) - {"ttl_s", "max_pending", "max_early", "max_bytes"}:
        raise PolicyError(
            f"{where}: 'join' must be a table with ttl_s, max_pending, max_early, max_bytes."
        )
    d = JoinLimits()
    return JoinLimits(
        ttl_s=_non_negative(j.get("ttl_s", d.ttl_s), f"{where} join.ttl_s"),
        max_pending=_count(j.get("max_pending", d.max_pending), f"{where} join.max_pending"),
        max_early=_count(j.get("max_early", d.max_early), f"{where} join.max_early"),
        max_bytes=_count(j.get("max_bytes", d.max_bytes), f"{where} join.max_bytes"),
    )


def _count(v: Any, where: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise PolicyError(f"{where} must be a whole number >= 1, got {v!r}.")
    return v


def _is_finite_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _non_negative(v: Any, where: str) -> float:
    if not _is_finite_number(v) or v < 0:
        raise PolicyError(f"{where} must be a number >= 0, got {v!r}.")
    return float(v)
