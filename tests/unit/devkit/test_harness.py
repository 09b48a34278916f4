"""The harness's timeout diagnosis: a worker log cut to where it waits."""

from __future__ import annotations

from streamproc.devkit.harness import diagnosis

LOG = """\
2026-12-01 03:31:33,310 INFO faust.worker: [^Worker]: Starting...
2026-12-01 03:31:33,316 INFO faust.app.base: [^-App]: Starting...
2026-12-01 03:31:40,000 INFO faust.tables.recovery: [^---Recovery]: Resuming flow...
2026-12-01 03:31:41,000 INFO streamproc.service.agents: model m0: retraining for rq-1 on 80 examples
2026-12-01 03:31:42,000 WARNING streamproc.service.worker: task Task-3:
Stack for <Task pending name='Task-3'> (most recent call last):
  File "/venv/site-packages/aiokafka/client.py", line 260, in _md_synchronizer
    ret = await self._metadata_update(self.cluster, topics)
2026-12-01 03:31:42,001 WARNING streamproc.service.worker: task Task-9:
Stack for <Task pending name='Task-9'> (most recent call last):
  File "/repo/streamproc/service/agents.py", line 284, in _save
    await self.w.app.producer.flush()
2026-12-01 03:31:42,002 WARNING streamproc.service.worker: consumer state (faust's view):
  sp-predictions[0]: fetched 10, committed 9
"""


def test_diagnosis_keeps_notable_lines_and_streamproc_stacks_only() -> None:
    out = diagnosis(LOG)
    assert "[^-App]: Starting" not in out  # faust's start-up chatter
    assert "[^Worker]: Starting" in out  # but a (re)start of the worker is kept
    assert "Resuming flow" in out and "retraining for rq-1" in out
    assert 'agents.py", line 284, in _save' in out and "producer.flush()" in out
    assert "_md_synchronizer" not in out  # a library task, no streamproc frame
    assert "committed 9" in out  # the consumer state that ends the dump


def test_diagnosis_of_a_log_without_a_dump_is_its_notable_lines() -> None:
    out = diagnosis(LOG.split("2026-12-01 03:31:42,000")[0])
    assert "retraining for rq-1" in out and "streamproc tasks:" in out.splitlines()[-1]
