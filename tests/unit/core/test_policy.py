"""Trigger policy files: defaults, per-model overrides, and every way a file can be refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamproc.core.detect.cusum import Cusum
from streamproc.core.detect.threshold import ThresholdRule
from streamproc.core.policy import (
    DEFAULT_POLICY,
    ErrorRule,
    MetricRule,
    Policy,
    PolicyBook,
    PolicyError,
    load_policy,
    load_policy_text,
)


def refused(text: str) -> str:
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, origin="p.toml")
    msg = str(info.value)
    assert msg.startswith("p.toml"), msg
    return msg


# --------------------------------------------------------------------------- defaults


def test_default_book_is_the_seed_rule_plus_cusum_on_errors() -> None:
    book = load_policy(None)
    assert book == PolicyBook()
    pol = book.for_model("any-model")
    assert pol is DEFAULT_POLICY
    assert pol.name == "default"
    assert pol.metric_rules == (MetricRule("drift", above=0.1, below=None),)
    assert pol.error == ErrorRule("cusum", (("warmup", 1000), ("shift", 0.5), ("arl", 1e6)))
    assert pol.cooldown_s == 0.0
    assert pol.pending_timeout_s == 3600.0


def test_default_rules_build_working_detectors() -> None:
    rule = DEFAULT_POLICY.metric_rules[0].detector()
    assert isinstance(rule, ThresholdRule)
    assert [rule.update(x) for x in (0.05, 0.1, 0.11)] == [False, False, True]
    assert DEFAULT_POLICY.error is not None
    det = DEFAULT_POLICY.error.make()
    assert isinstance(det, Cusum)
    assert (det.warmup, det.shift, det.arl) == (1000, 0.5, 1e6)


@pytest.mark.parametrize("text", ["", "# just a comment\n", "[default]\n"])
def test_empty_file_gives_the_default_policy(text: str) -> None:
    assert load_policy_text(text).for_model("m") == DEFAULT_POLICY


def test_default_section_overrides_fields_it_names_only() -> None:
    book = load_policy_text(
        """
        [default]
        name = "house"
        cooldown_s = 600
        metrics = [{ name = "auc", below = 0.7 }, { name = "drift", above = 0.3 }]
        """
    )
    pol = book.for_model("m")
    assert pol.name == "house"
    assert pol.cooldown_s == 600.0
    assert isinstance(pol.cooldown_s, float)
    assert pol.metric_rules == (MetricRule("auc", below=0.7), MetricRule("drift", above=0.3))
    assert pol.error == DEFAULT_POLICY.error
    assert pol.pending_timeout_s == 3600.0


def test_metrics_can_be_emptied() -> None:
    pol = load_policy_text("[default]\nmetrics = []\n").for_model("m")
    assert pol.metric_rules == ()


# --------------------------------------------------------------------------- overrides


BOOK = """
[default]
cooldown_s = 60
metrics = [{ name = "drift", above = 0.1 }]

[[model]]
match = "fraud-eu*"
name = "fraud-europe"
metrics = [{ name = "drift", above = 0.3 }]

[[model]]
match = "fraud-*"
metrics = [{ name = "drift", above = 0.2 }, { name = "auc", below = 0.7 }]
cooldown_s = 5

[[model]]
match = "churn-?"
error = { detector = "cusum", warmup = 100, arl = 1e4 }
"""


def test_first_matching_glob_wins() -> None:
    book = load_policy_text(BOOK)
    eu = book.for_model("fraud-eu-1")
    assert eu.name == "fraud-europe"
    assert eu.metric_rules == (MetricRule("drift", above=0.3),)
    us = book.for_model("fraud-us")
    assert us.name == "fraud-*"  # the name defaults to the pattern
    assert us.metric_rules[1] == MetricRule("auc", below=0.7)
    assert us.cooldown_s == 5.0


def test_overrides_inherit_the_default_section() -> None:
    book = load_policy_text(BOOK)
    eu = book.for_model("fraud-eu-1")
    assert eu.cooldown_s == 60.0  # from [default], not from the built-in policy
    assert eu.error == DEFAULT_POLICY.error
    churn = book.for_model("churn-7")
    assert churn.metric_rules == (MetricRule("drift", above=0.1),)
    assert churn.error == ErrorRule("cusum", (("arl", 1e4), ("warmup", 100)))
    det = churn.error.make()
    assert isinstance(det, Cusum)
    assert (det.warmup, det.shift, det.arl) == (100, 0.5, 1e4)


@pytest.mark.parametrize("model_id", ["churn-17", "CHURN-7", "fraud", "eu-fraud-1", ""])
def test_unmatched_models_get_the_default_section(model_id: str) -> None:
    book = load_policy_text(BOOK)
    pol = book.for_model(model_id)
    assert pol is book.default
    assert pol.cooldown_s == 60.0


def test_order_of_overrides_is_kept() -> None:
    book = load_policy_text(BOOK)
    assert [p for p, _ in book.overrides] == ["fraud-eu*", "fraud-*", "churn-?"]


def test_exact_id_as_pattern() -> None:
    book = load_policy_text('[[model]]\nmatch = "m1"\ncooldown_s = 9\n')
    assert book.for_model("m1").cooldown_s == 9.0
    assert book.for_model("m10").cooldown_s == 0.0


def test_error_false_disables_the_error_detector() -> None:
    book = load_policy_text(
        """
        [default]
        error = false

        [[model]]
        match = "x*"
        error = { detector = "cusum", warmup = 50 }
        """
    )
    assert book.for_model("m").error is None
    assert book.for_model("m").metric_rules == DEFAULT_POLICY.metric_rules
    assert book.for_model("x1").error == ErrorRule("cusum", (("warmup", 50),))


def test_error_false_in_an_override_only() -> None:
    book = load_policy_text('[[model]]\nmatch = "quiet-*"\nerror = false\n')
    assert book.for_model("quiet-1").error is None
    assert book.for_model("loud-1").error == DEFAULT_POLICY.error


def test_threshold_detector_as_error_rule() -> None:
    pol = load_policy_text('[default]\nerror = { detector = "threshold", above = 0.5 }\n')
    rule = pol.for_model("m").error
    assert rule is not None
    assert isinstance(rule.make(), ThresholdRule)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ("[default\ncooldown_s = 1\n", ["is not valid TOML", "fix the syntax"]),
        ("[defaults]\ncooldown_s = 1\n",
         ["unknown top-level keys ['defaults']", "use [default] and [[model]]"]),
        ("[default]\ncooldown = 1\n",
         ["p.toml [default]", "unknown keys ['cooldown']", "known:", "'cooldown_s'"]),
        ('[[model]]\nmatch = "a"\n\n[[model]]\nmatch = "b"\nthreshold = 3\n',
         ["p.toml [[model]] #2", "unknown keys ['threshold']"]),
    ],
    ids=["bad-toml", "unknown-top-level", "unknown-key-in-default", "unknown-key-in-model-2"],
)  # fmt: skip
def test_a_refused_file_says_where_and_what_to_fix(toml: str, says: list[str]) -> None:
    msg = refused(toml)
    for part in says:
        assert part in msg


@pytest.mark.parametrize(
    "entry",
    ["{ above = 0.1 }", "{ name = 3, above = 0.1 }", '"drift"', "0.1"],
)
def test_metric_without_a_name(entry: str) -> None:
    msg = refused(f"[default]\nmetrics = [{entry}]\n")
    assert "each metrics entry needs a name" in msg
    assert "name = 'drift', above = 0.1" in msg


def test_metric_without_above_or_below() -> None:
    msg = refused('[default]\nmetrics = [{ name = "drift" }]\n')
    assert "metric 'drift' needs 'above' or 'below'" in msg


@pytest.mark.parametrize("bound", ["above", "below"])
@pytest.mark.parametrize("value", ['"0.1"', "[0.1]", "{ x = 1 }"])
def test_metric_threshold_not_a_number(bound: str, value: str) -> None:
    msg = refused(f'[default]\nmetrics = [{{ name = "auc", {bound} = {value} }}]\n')
    assert "metric 'auc' thresholds must be finite numbers" in msg


def test_metric_unknown_key() -> None:
    msg = refused('[default]\nmetrics = [{ name = "drift", above = 0.1, window = 5 }]\n')
    assert "metric 'drift' has unknown keys ['window']" in msg


def test_metric_integer_threshold_accepted() -> None:
    pol = load_policy_text('[default]\nmetrics = [{ name = "n", above = 3 }]\n').for_model("m")
    assert pol.metric_rules == (MetricRule("n", above=3),)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ('{ detector = "cusum", warmup = 1 }', "warmup must be a whole number >= 2"),
        ('{ detector = "cusum", shift = 0 }', "cusum needs a finite shift > 0 and arl > 1"),
        ('{ detector = "cusum", arl = 1 }', "cusum needs a finite shift > 0 and arl > 1"),
        ('{ detector = "cusum", window = 10 }', "window"),
        ('{ detector = "nope" }', "unknown detector 'nope'; use one of ["),
        ('{ detector = "threshold" }', "needs 'above' or 'below'"),
    ],
)
def test_error_rule_with_bad_params(error: str, expected: str) -> None:
    msg = refused(f"[default]\nerror = {error}\n")
    assert "error detector is not valid" in msg
    assert expected in msg


@pytest.mark.parametrize("error", ['"cusum"', "true", "3", '["cusum"]'])
def test_error_rule_not_a_table(error: str) -> None:
    msg = refused(f"[default]\nerror = {error}\n")
    assert "'error' must be a table like { detector = 'cusum' } or false" in msg


@pytest.mark.parametrize("key", ["cooldown_s", "pending_timeout_s"])
@pytest.mark.parametrize("value", ["-1", "-0.5", '"60"', "[1]"])
def test_negative_or_non_numeric_durations(key: str, value: str) -> None:
    msg = refused(f"[default]\n{key} = {value}\n")
    assert f"{key} must be a number >= 0" in msg


def test_negative_cooldown_in_a_model_table() -> None:
    msg = refused('[[model]]\nmatch = "m"\ncooldown_s = -5\n')
    assert "p.toml [[model]] #1 cooldown_s must be a number >= 0, got -5" in msg


@pytest.mark.parametrize("table", ["cooldown_s = 5", 'match = ""', "match = 3"])
def test_model_without_match(table: str) -> None:
    msg = refused(f"[[model]]\n{table}\n")
    assert "[[model]] #1: 'match' is missing" in msg
    assert "glob like 'fraud-*'" in msg


def test_load_policy_from_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(BOOK, encoding="utf-8")
    assert load_policy(path) == load_policy_text(BOOK)
    assert load_policy(str(path)).for_model("fraud-eu-2").name == "fraud-europe"


def test_load_policy_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[default]\ncooldown_s = -1\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=re.escape(str(path))):
        load_policy(path)


def test_load_policy_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "policy.toml"
    with pytest.raises(PolicyError) as info:
        load_policy(missing)
    msg = str(info.value)
    assert f"cannot read policy file {missing}" in msg
    assert "No such file or directory" in msg
    assert "check the path" in msg


def test_load_policy_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path)


def test_policy_objects_are_immutable() -> None:
    with pytest.raises(AttributeError):
        DEFAULT_POLICY.cooldown_s = 5  # type: ignore[misc]
    assert Policy() == DEFAULT_POLICY


# --------------------------------------------------------------------------- bugs


@pytest.mark.parametrize(
    "text",
    ['[model]\nmatch = "fraud-*"\ncooldown_s = 5\n', 'model = "fraud-*"\n', "default = 5\n"],
    ids=["model-single-brackets", "model-string", "default-number"],
)
def test_malformed_sections_raise_policy_error(text: str) -> None:
    with pytest.raises(PolicyError):
        load_policy_text(text)


@pytest.mark.parametrize(
    "text",
    [
        '[default]\nmetrics = [{ name = "drift", above = true }]\n',
        '[default]\nmetrics = [{ name = "drift", above = nan }]\n',
        "[default]\ncooldown_s = nan\n",
        "[default]\ncooldown_s = true\n",
        '[default]\nerror = { detector = "cusum", shift = nan }\n',
    ],
    ids=["above-true", "above-nan", "cooldown-nan", "cooldown-true", "shift-nan"],
)
def test_non_numbers_are_refused(text: str) -> None:
    with pytest.raises(PolicyError):
        load_policy_text(text)


def test_the_readme_policy_example_loads_and_is_the_default_policy() -> None:
    import dataclasses

    def canon(v: object) -> object:  # parameter pairs compare as mappings, in any order
        if isinstance(v, dict):
            return {k: canon(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            if v and all(isinstance(e, list | tuple) and len(e) == 2 and isinstance(e[0], str)
                         for e in v):  # fmt: skip
                return {e[0]: canon(e[1]) for e in v}
            return [canon(e) for e in v]
        return v

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    (block,) = re.findall(r"```toml\n(.*?)```", readme, re.S)
    book = load_policy_text(block)
    # "With no file the defaults below apply": the example must be the default policy.
    assert canon(dataclasses.asdict(book.default)) == canon(dataclasses.asdict(DEFAULT_POLICY))
    assert book.for_model("fraud-eu") != book.default


# --------------------------------------------------------------- issue 12 item 5: detector kinds

_NUMERIC_KINDS = ["ks", "psi", "wasserstein", "numeric_drift", "adwin", "page_hinkley", "kswin"]


@pytest.mark.parametrize("kind", _NUMERIC_KINDS)
def test_choosing_a_numeric_drift_detector_starts_from_its_own_defaults(kind: str) -> None:
    book = load_policy_text(f'[default.drift]\nnumeric = {{ detector = "{kind}" }}\n')
    rule = book.default.drift
    assert rule is not None
    assert rule.numeric == (("detector", kind),)  # no 'arl'/'warmup' of the default CUSUM
    assert rule.make(0.5).kind == kind


def test_same_kind_keeps_the_default_parameters_it_does_not_name() -> None:
    book = load_policy_text("[default.drift]\nnumeric = { warmup = 200 }\n")
    assert book.default.drift is not None
    assert dict(book.default.drift.numeric) == {
        "detector": "rank_cusum",
        "warmup": 200,
        "arl": 1e6,
    }


def test_a_model_table_refines_the_default_drift_detector() -> None:
    book = load_policy_text(
        '[default.drift]\nnumeric = { detector = "ks", alpha = 1e-3 }\n'
        '[[model]]\nmatch = "m"\ndrift = { numeric = { window_size = 500 } }\n'
    )
    rule = book.for_model("m").drift
    assert rule is not None
    assert dict(rule.numeric) == {"detector": "ks", "alpha": 1e-3, "window_size": 500}


def test_categorical_kind_starts_from_its_own_defaults() -> None:
    book = load_policy_text('[default.drift]\ncategorical = { detector = "js" }\n')
    assert book.default.drift is not None
    assert book.default.drift.categorical == (("detector", "js"),)
    assert book.default.drift.make("a").kind == "js"


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ('[default.drift]\nnumeric = { detector = "ks", alpah = 0.01 }', ["'alpah'", "'alpha'"]),
        ("[default.drift]\nnumeric = { wamup = 10 }", ["'wamup'", "'warmup'"]),
        ('[default.drift]\nnumeric = { detector = "adwin", delt = 0.1 }', ["'delt'", "'delta'"]),
        ("[default.drift]\ncategorical = { wamup = 9 }", ["'wamup'", "'warmup'"]),
        ('[default]\nerror = { detector = "cusum", wamup = 3 }', ["error", "'wamup'"]),
    ],
)
def test_a_typo_key_is_named_as_written_with_the_fix(toml: str, says: list[str]) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy_text(toml)
    msg = str(info.value)
    assert "unexpected keyword" not in msg
    assert "fix the spelling or remove it" in msg
    for s in says:
        assert s in msg


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[default]\ndrift = { featurs = ["*"] }', "'featurs'"),
        ("[default]\njoin = { max_pendng = 50 }", "'max_pendng'"),
        ("[default]\nconfirm = { k = 2, m = 5 }", "'m'"),
        ("[default]\nbudget = { max = 2, per = 60 }", "'per'"),
        ("[default]\nschedule = { max_age = 60 }", "'max_age'"),
    ],
)
def test_a_typo_in_a_policy_table_is_named_as_written(toml: str, key: str) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy_text(toml)
    assert key in str(info.value) and "fix the spelling or remove it" in str(info.value)


def test_builtin_trainer_with_a_learner_is_kept_and_plain_builtin_is_none() -> None:
    book = load_policy_text('[default]\ntrainer = { kind = "builtin", learner = "tree" }\n')
    assert book.default.trainer == (("kind", "builtin"), ("learner", "tree"))
    assert load_policy_text('[default]\ntrainer = { kind = "builtin" }\n').default.trainer is None
