"""CUSUM snapshots name their fields (format 2); states saved before (format 1) still restore.

The ``*_V1`` states below were captured from the code before the fields got names (commit
9e73bd5, ``detector.state()`` after the streams replayed here). Restoring one and feeding on
must give what a detector that never stopped gives.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from streamproc.core.detect import make_detector, restore
from streamproc.core.detect.cusum import CUSUM_FORMAT
from streamproc.core.detect.shift import SHIFT_FORMAT

CUSUM_BERNOULLI_V1 = {'kind': 'cusum', 'params': [20, 0.5, 10000.0, 0.02, 20], 's': [60, 20, 3.0, 3.0, True, 0.4413039243515975, -0.12320876395491041, 0.28225634415325396, 3]}  # noqa: E501  # fmt: skip
CUSUM_GAUSSIAN_V1 = {'kind': 'cusum', 'params': [20, 0.5, 10000.0, 0.02, 20], 's': [60, 20, 35.94795683880947, 122.94872616031302, False, 0.3395162934922906, 1.7973978419404735, 1.752230850509499, 1]}  # noqa: E501  # fmt: skip
SHIFT_V1 = {'kind': 'mean_variance_cusum', 'params': [20, [0.5, 1.0], 2.0, 1000000.0], 's': [20, 40, 15.065818771248336, 18.958966344176346, 2, 0.8369899317360187, 0.712977690166065, 0.6931471805599453, -0.17185025692665915, 0.23570226039551587, 0.0, 0.0, 0.0, 0.0, 6.140605078233575, 0.0]}  # noqa: E501  # fmt: skip
RISING_SHIFT_V1 = {'kind': 'rising_only', 'spec': {'detector': 'mean_variance_cusum', 'warmup': 20}, 'inner': {'kind': 'mean_variance_cusum', 'params': [20, [0.5, 1.0], 2.0, 1000000.0], 's': [20, 40, 26.672306328073443, 75.01812483695643, 0, 1.3336153164036721, 1.668723442935573, 0.6931471805599453, -0.048790164169432056, 0.22360679774997896, 9.724414539189915, 18.19882907837983, 0.0, 0.0, 89.73328518149982, 0.0]}, 'falls': 0}  # noqa: E501  # fmt: skip


def bernoulli(rng: random.Random) -> float:
    return 1.0 if rng.random() < 0.2 else 0.0


def lognormal(rng: random.Random) -> float:
    return rng.lognormvariate(0, 1)


def lognormal_missing(rng: random.Random, i: int) -> float | None:
    return None if i % 17 == 0 else rng.lognormvariate(0, 1)


# (saved state, the detector as built then, seed, value i of the stream)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], int, Callable[..., Any]]] = {
    "cusum-bernoulli": (
        CUSUM_BERNOULLI_V1,
        {"detector": "cusum", "warmup": 20, "arl": 1e4},
        5,
        lambda rng, i: bernoulli(rng),
    ),
    "cusum-gaussian": (
        CUSUM_GAUSSIAN_V1,
        {"detector": "cusum", "warmup": 20, "arl": 1e4},
        6,
        lambda rng, i: lognormal(rng),
    ),
    "mean-variance": (
        SHIFT_V1,
        {"detector": "mean_variance_cusum", "warmup": 20, "shifts": [0.5, 1.0]},
        7,
        lognormal_missing,
    ),
    "rising-only-mean-variance": (
        RISING_SHIFT_V1,
        {"detector": "rising_only", "inner": {"detector": "mean_variance_cusum", "warmup": 20}},
        8,
        lambda rng, i: lognormal(rng),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_positional_state_restores_and_continues_like_never_stopping(name: str) -> None:
    saved, spec, seed, value = CASES[name]
    spec = dict(spec)
    kind = spec.pop("detector")
    never_stopped = make_detector(kind, **spec)
    rng = random.Random(seed)
    for i in range(60):
        never_stopped.update(value(rng, i))
    restored = restore(orjson.loads(orjson.dumps(saved)))
    assert restored.state() == never_stopped.state()  # the same detector, in the named form
    for i in range(60, 400):
        x = value(rng, i) if i < 200 else 3.0 * (value(rng, i) or 0.0)  # then a rise
        assert restored.update(x) == never_stopped.update(x)
        assert restored.statistic == never_stopped.statistic
    assert restored.state() == never_stopped.state()
    assert restored.details() == never_stopped.details()


def test_cusum_state_names_its_fields() -> None:
    det = make_detector("cusum", warmup=20)
    s = det.state()
    assert s["format"] == CUSUM_FORMAT == 2
    assert s["params"] == {
        "warmup": 20,
        "shift": 0.5,
        "arl": 1e6,
        "min_rise": 0.02,
        "reference_max": 20,
    }
    assert sorted(s["s"]) == sorted(
        ["n", "reference_n", "sum", "sumsq", "binary", "statistic", "a", "b", "since"]
    )


def test_mean_variance_state_names_its_fields_and_cusums() -> None:
    det = make_detector("mean_variance_cusum", warmup=20, shifts=[0.5, 1.0])
    s = restore(SHIFT_V1).state()
    assert s["format"] == SHIFT_FORMAT == 2
    assert s["params"] == {"warmup": 20, "shifts": [0.5, 1.0], "scale": 2.0, "arl": 1e6}
    assert list(s["cusums"]) == list(det.details()["statistics"])  # one per named CUSUM
    assert s["cusums"]["variance_up"] == SHIFT_V1["s"][-2]
    assert s["s"]["mean"] == SHIFT_V1["s"][5] and s["s"]["slack"] == SHIFT_V1["s"][9]


@pytest.mark.parametrize(
    "state, message",
    [
        ({**CUSUM_BERNOULLI_V1, "format": 3}, "cusum state has format 3, not 2; reset"),
        ({**CUSUM_BERNOULLI_V1, "s": [1, 2, 3]}, r"not the 9 fields \['n', "),
        (
            {**restore(CUSUM_BERNOULLI_V1).state(), "s": {"n": 1}},
            r"cusum state has fields \['n'\], expected",
        ),
        ({**SHIFT_V1, "s": SHIFT_V1["s"][:-1]}, "5 statistics for 6 CUSUMs; reset"),
    ],
    ids=["other-format", "short-list", "missing-fields", "missing-statistic"],
)
def test_a_state_of_another_shape_is_refused_with_what_to_do(
    state: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        restore(state)
