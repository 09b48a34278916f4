"""Trigger policy: which signals each model watches, with which detectors, and when to act.

A policy file is TOML. ``[default]`` applies to every model; each ``[[model]]`` table applies to
the model ids its ``match`` glob matches (first match wins) and overrides the defaults it names.
With no file, :data:`DEFAULT_POLICY` applies: the seed's rule (metric ``drift`` above 0.1) and a
CUSUM on the error rate of predictions joined with their labels.

.. code-block:: toml

    [default]
    cooldown_s = 0            # event-time seconds after a request in which no new one is made
    metrics = [{ name = "drift", above = 0.1 }]
    error = { detector = "cusum", warmup = 500, shift = 0.5, arl = 1e6 }

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
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from streamproc.core.detectors import Detector, make_detector

__all__ = [
    "DEFAULT_POLICY",
    "ErrorRule",
    "MetricRule",
    "Policy",
    "PolicyBook",
    "PolicyError",
    "load_policy",
    "load_policy_text",
]


class PolicyError(ValueError):
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
class ErrorRule:
    """An online detector on the error of predictions joined with their labels."""

    detector: str = "cusum"
    params: tuple[tuple[str, Any], ...] = (("warmup", 500), ("shift", 0.5), ("arl", 1e6))

    def make(self) -> Detector:
        return make_detector(self.detector, **dict(self.params))


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything that decides when one model is retrained."""

    name: str = "default"
    metric_rules: tuple[MetricRule, ...] = (MetricRule("drift", above=0.1),)
    error: ErrorRule | None = field(default_factory=ErrorRule)
    cooldown_s: float = 0.0
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

_POLICY_KEYS = {"name", "metrics", "error", "cooldown_s", "pending_timeout_s", "match"}


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
    default = _policy(doc.get("default", {}), DEFAULT_POLICY, f"{origin} [default]")
    overrides = []
    for i, table in enumerate(doc.get("model", [])):
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
        changes["metric_rules"] = tuple(_metric_rule(m, where) for m in table["metrics"])
    if "error" in table:
        changes["error"] = _error_rule(table["error"], where)
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
        if v is not None and not isinstance(v, int | float):
            raise PolicyError(f"{where}: metric {m['name']!r} thresholds must be numbers.")
    return MetricRule(m["name"], above=above, below=below)


def _error_rule(e: Any, where: str) -> ErrorRule | None:
    if e is False or e == {}:
        return None
    if not isinstance(e, dict):
        raise PolicyError(
            f"{where}: 'error' must be a table like {{ detector = 'cusum' }} or false."
        )
    params = {k: v for k, v in e.items() if k != "detector"}
    rule = ErrorRule(detector=str(e.get("detector", "cusum")), params=tuple(sorted(params.items())))
    try:
        rule.make()
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{where}: error detector is not valid: {exc}") from None
    return rule


def _non_negative(v: Any, where: str) -> float:
    if not isinstance(v, int | float) or v < 0:
        raise PolicyError(f"{where} must be a number >= 0, got {v!r}.")
    return float(v)
