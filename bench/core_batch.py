"""The core alone on batched records: per-event path against the batch path, same events.

100 models, 10 numeric features and a text category each, a prediction score, labels for
half the predictions (in their own batched records, after their predictions), batched records
of ``--batch`` events per model as the SDK sends them. The same records go through
``route_record`` twice, in one process, one after the other: one event at a time
(``vectorized=False``) and through the batch path (``ModelMonitor.on_predictions``). Both runs
start from the same warmed-up monitors (every detector's reference frozen), so the figure is
the steady state; ``--cold`` times the warm-up too. The outcomes and snapshots of both runs
are compared, and the table says whether they are identical.

Run: ``.venv/bin/python bench/core_batch.py [--models 100] [--batches 4] [--batch 1000]
[--regression] [--labels-first] [--cold]``.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

import orjson

from streamproc.core import batches
from streamproc.core.events import SourceRef
from streamproc.core.monitor import ModelMonitor
from streamproc.core.router import Monitors, route_record


def records(
    models: int,
    per_model: int,
    batch: int,
    features: int,
    seed: int,
    t0: float,
    labels_first: bool = False,
    regression: bool = False,
) -> list[tuple[str, bytes, int]]:
    """(topic, record, events) in arrival order: each model's predictions, then its labels
    (``labels_first``: the labels first, as a worker catching up on both topics may read
    them: each waits for its prediction). ``regression``: predictions and labels are
    quantities (a lognormal amount and its prediction), not classes."""
    rng = random.Random(seed)
    out = []
    for b in range(per_model // batch):
        for m in range(models):
            preds, labels = [], []
            for j in range(batch):
                i = (b * models + m) * batch + j
                ts = t0 + i * 0.01
                feats: dict[str, Any] = {
                    f"f{k}": round(rng.gauss(0, 1), 4) for k in range(features)
                }
                feats["cat"] = rng.choice("abcd")
                preds.append(
                    {
                        "event_id": f"s{seed}e{i}",
                        "model_id": f"m{m:03d}",
                        "model_version": "v1",
                        "ts": ts,
                        "prediction": rng.randint(0, 1),
                        "score": round(rng.random(), 4),
                        "features": feats,
                    }
                )
                truth: Any = None
                if regression:
                    truth = round(rng.lognormvariate(3, 1), 2)
                    preds[-1]["prediction"] = round(truth + rng.gauss(0, 1), 3)
                if j % 2 == 0:
                    lab = {"event_id": f"s{seed}e{i}", "model_id": f"m{m:03d}", "ts": ts + 1.0}
                    labels.append({**lab, "label": truth if regression else rng.randint(0, 1)})
            pair = [
                ("predictions", orjson.dumps(batches.columns("prediction", preds)), batch),
                ("labels", orjson.dumps(batches.columns("label", labels)), len(labels)),
            ]
            out.extend(pair[::-1] if labels_first else pair)
    return out


def run(mons: Monitors, recs: list[tuple[str, bytes, int]], base: int, vectorized: bool) -> tuple:
    """(CPU seconds in all, in prediction records, outcomes)."""
    outs = []
    in_preds = 0.0
    t = time.process_time()
    for off, (topic, raw, _) in enumerate(recs):
        src = SourceRef(topic, 0, base + off)
        t0 = time.process_time()
        outs.extend(route_record(mons, topic, raw, src, 0.0, vectorized))
        if topic == "predictions":
            in_preds += time.process_time() - t0
    return time.process_time() - t, in_preds, outs


def _copy(mons: Monitors) -> Monitors:
    """Monitors restored from ``mons``' snapshots (the same state, detectors included)."""
    out = Monitors()
    out.live = {m: ModelMonitor.restore(mon.snapshot()) for m, mon in mons.live.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--features", type=int, default=10)
    ap.add_argument("--batch", type=int, default=1000, help="events per prediction record")
    ap.add_argument("--batches", type=int, default=3, help="timed records per model")
    ap.add_argument("--cold", action="store_true", help="time the detectors' warm-up too")
    ap.add_argument(
        "--labels-first", action="store_true", help="each label record before its predictions"
    )
    ap.add_argument("--regression", action="store_true", help="quantities, not classes")
    a = ap.parse_args()
    warm = records(a.models, 1000, min(a.batch, 1000), a.features, 1, 1.7e9, False, a.regression)
    timed = records(
        a.models,
        a.batches * a.batch,
        a.batch,
        a.features,
        2,
        1.7e9 + 2000.0,
        a.labels_first,
        a.regression,
    )
    events = sum(n for _, _, n in timed)
    base = Monitors()
    if a.cold:
        timed = warm + timed
        events += sum(n for _, _, n in warm)
    else:
        run(base, warm, 0, vectorized=False)
    one, many = _copy(base), _copy(base)
    t1, p1, o1 = run(one, timed, len(warm), vectorized=False)
    t2, p2, o2 = run(many, timed, len(warm), vectorized=True)
    preds = sum(n for topic, _, n in timed if topic == "predictions")
    same = o1 == o2 and all(one.live[m].snapshot() == many.live[m].snapshot() for m in one.live)
    requests = sum(len(o.requests) for o in o1)
    print(
        f"{a.models} models x {a.features} numeric features + 1 category, score, "
        f"{'regression' if a.regression else 'class'} labels for half; {a.batch} events per "
        f"prediction record; {events} events timed "
        f"({'with' if a.cold else 'after'} the warm-up); {requests} retrain requests"
    )
    print(f"{'path':<12}{'cpu s':>10}{'events/s':>14}{'predictions/s':>16}{'labels/s':>12}")
    for name, t, tp in (("per-event", t1, p1), ("batch", t2, p2)):
        labels = (events - preds) / max(t - tp, 1e-9)
        print(f"{name:<12}{t:>10.2f}{events / t:>14,.0f}{preds / tp:>16,.0f}{labels:>12,.0f}")
    print(
        f"ratio batch/per-event: {t1 / t2:.2f} (prediction records {p1 / p2:.2f}, label "
        f"records {(t1 - p1) / (t2 - p2):.2f})   identical outcomes and snapshots: {same}"
    )


if __name__ == "__main__":
    main()
