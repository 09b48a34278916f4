"""Topic names are written once, in streamproc/core/topics.py, and their roles agree."""

from __future__ import annotations

import ast
from pathlib import Path

from streamproc.config import Settings
from streamproc.core import topics

PACKAGE = Path(topics.__file__).resolve().parents[1]
# Names that are also an event's field or a counter's name ("metrics" is both) cannot be told
# from a topic by reading a string; the others can.
UNAMBIGUOUS = {topics.RETRAIN_REQUESTS, topics.RETRAIN_RESULTS, topics.DEAD_LETTERS,
               topics.DEPLOYMENTS}  # fmt: skip
# (module, name): why the string there is not a topic name.
NOT_A_TOPIC = {("core/monitor.py", topics.DEPLOYMENTS): "the name of a counter of deployments"}


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        if isinstance(node, kinds) and node.body and isinstance(node.body[0], ast.Expr):
            out.add(id(node.body[0].value))
    return out


def test_no_module_but_core_topics_spells_a_topic_name() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        if where == "core/topics.py":
            continue
        tree = ast.parse(path.read_text())
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and node.value in UNAMBIGUOUS
                and id(node) not in docs
                and (where, node.value) not in NOT_A_TOPIC
            ):
                found.append(f"{where}:{node.lineno} {node.value!r}")
    assert found == [], "use the constants of streamproc.core.topics"


def test_roles_are_subsets_of_the_catalog_in_its_order() -> None:
    assert topics.TOPICS == ("predictions", "labels", "metrics", "retrain-requests",
                             "retrain-results", "deployments", "dead-letters")  # fmt: skip
    for role in (topics.SOURCE_TOPICS, topics.MONITORED_TOPICS, topics.BATCHED_TOPICS):
        assert set(role) <= set(topics.TOPICS)
    assert set(topics.BATCHED_TOPICS) <= set(topics.SOURCE_TOPICS) <= set(topics.MONITORED_TOPICS)
    assert topics.RETRAIN_REQUESTS not in topics.MONITORED_TOPICS  # the retrain agent's input


def test_settings_and_the_sdk_apply_the_same_prefixing_rule() -> None:
    from streamproc.client import PredictionLogger

    s = Settings(topic_prefix="staging.")
    assert s.topic(topics.LABELS) == topics.prefixed("staging.", "labels") == "staging.labels"
    logger = PredictionLogger("127.0.0.1:1", "staging.")
    try:
        assert logger.topic == "staging.predictions"
    finally:
        logger.close()
