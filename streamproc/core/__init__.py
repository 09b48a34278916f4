"""The pure core: no Kafka, no faust, no asyncio, no clock reads. Time comes in with the events.

Modules in the order data flows through them: ``events`` (contracts) -> ``labeljoin`` (predictions
meet their delayed labels) -> ``detectors`` (with ``shift`` and ``twosample``) -> ``policy`` ->
``trigger`` (alarms to decisions) -> ``rollback``, ``changepoint`` (where an error rise began),
``degraded`` (re-asking after a rejected retrain), ``versions`` (canary and shadow versions' own
signals) -> ``monitor`` (per-model decisions) -> ``router``
(raw records in) -> ``training`` -> ``registry`` -> ``gate`` -> ``retrain`` (one retrain in flight
per model).
"""
