"""Online change detectors, one per module, behind one protocol and one registry.

- :mod:`~streamproc.core.detect.base`: the :class:`Detector` protocol, shared state helpers;
- :mod:`~streamproc.core.detect.registry`: kinds by name, :func:`make_detector`,
  :func:`parameters`, and :func:`restore`, the one way back from a saved state;
- the detectors: :mod:`~streamproc.core.detect.threshold`, :mod:`~streamproc.core.detect.cusum`,
  :mod:`~streamproc.core.detect.river_adapters` (through
  :mod:`~streamproc.core.detect.river_compat`), :mod:`~streamproc.core.detect.ranks`,
  :mod:`~streamproc.core.detect.shift`, :mod:`~streamproc.core.detect.multinomial`,
  :mod:`~streamproc.core.detect.seriescp`, :mod:`~streamproc.core.detect.rising`, and the
  windowed two-sample tests (:mod:`~streamproc.core.detect.windowdrift`,
  :mod:`~streamproc.core.detect.numeric_drift`, :mod:`~streamproc.core.detect.categorical_drift`);
- their helpers: :mod:`~streamproc.core.detect.stats` (special functions, multiple testing) and
  :mod:`~streamproc.core.detect.blockhist` (where a change happened).

Examples
--------
>>> from streamproc.core.detect import make_detector, restore
>>> det = make_detector("threshold", above=0.1)
>>> det.update(0.2), restore(det.state()).state() == det.state()
(True, True)
"""

from streamproc.core.detect.base import Detector
from streamproc.core.detect.registry import KINDS, make_detector, parameters, restore

__all__ = ["KINDS", "Detector", "make_detector", "parameters", "restore"]
