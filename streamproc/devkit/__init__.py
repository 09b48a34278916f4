"""Developer kit: a local Apache Kafka broker and real worker processes, for the demo and the tests.

- :mod:`~streamproc.devkit.localkafka`: download, start and stop a single-node KRaft broker on
  127.0.0.1 (``streamproc kafka ...``);
- :mod:`~streamproc.devkit.harness`: run workers as real processes, produce to and read from real
  topics. Nothing here is mocked; the integration tests and ``streamproc demo`` use it.
"""
