"""The detector registry: building kinds by name, the messages, and restore of unknown kinds."""

from __future__ import annotations

import pytest

from streamproc.core.detect import make_detector, restore
from streamproc.core.detect.cusum import Cusum
from streamproc.core.detect.threshold import ThresholdRule


def test_restore_unknown_kind_raises() -> None:
    with pytest.raises(ValueError, match="unknown kind 'nope'; reset the worker's state"):
        restore({"kind": "nope"})


def test_make_detector_builds_each_kind() -> None:
    c = make_detector("cusum", warmup=20, shift=1.0, arl=50)
    assert isinstance(c, Cusum)
    assert (c.warmup, c.shift, c.arl) == (20, 1.0, 50)
    t = make_detector("threshold", below=0.7)
    assert isinstance(t, ThresholdRule)
    assert t.threshold == 0.7


def test_make_detector_unknown_kind_message() -> None:
    with pytest.raises(ValueError) as info:
        make_detector("adwinn", delta=0.002)
    msg = str(info.value)
    assert msg.startswith("unknown detector 'adwinn'; use one of [")
    assert "'adwin'" in msg and "'cusum'" in msg and "'threshold'" in msg


def test_make_detector_unknown_parameter_raises_type_error() -> None:
    with pytest.raises(TypeError, match="window"):
        make_detector("cusum", window=10)


def test_make_detector_propagates_validation() -> None:
    with pytest.raises(ValueError, match="warmup must be a whole number >= 2"):
        make_detector("cusum", warmup=1)
    with pytest.raises(ValueError, match="needs 'above' or 'below'"):
        make_detector("threshold")
