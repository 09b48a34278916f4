"""Third parties' private APIs, each confined to one module to check when raising its bound.

- :mod:`streamproc.compat.aiokafka`: aiokafka (``aiokafka<0.15``), used by the client SDK, the
  tools and the worker alike, so it sits here, beside :mod:`streamproc.security`, its user.
- :mod:`streamproc.service.faust_compat`: faust-streaming (``faust-streaming<0.16``); only the
  worker imports faust, so its module sits in :mod:`streamproc.service`.

``tests/unit/service/test_private_apis.py`` asserts every listed name exists on the installed
versions.
"""
