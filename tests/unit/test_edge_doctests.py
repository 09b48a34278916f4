"""Doctests of edge modules outside streamproc/core (pytest collects only the core's)."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from streamproc import mlflow_registry, orchestrators, pipeline, registries


@pytest.mark.parametrize("module", [mlflow_registry, orchestrators, pipeline, registries])
def test_doctests(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
