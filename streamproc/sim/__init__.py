"""Simulation, for developing and evaluating streamproc.

Drifting worlds, the closed loop offline, and an inference server on a drifting world live on Kafka.

- :mod:`~streamproc.sim.worlds`: synthetic streams with documented drift schedules;
- :mod:`~streamproc.sim.loop`: the closed loop offline on the same core as the live worker
  (bench/closed_loop.py);
- :mod:`~streamproc.sim.live`: ``streamproc simulate``, the client SDK on a world, live;
- :mod:`~streamproc.sim.scenarios`: small two-concept traffic for the demo and the tests.
"""
