"""One worker catching up on a backlog of both topics: record-time alignment on against off.

    python bench/catch_up.py [--events N] [--rounds R] [--single]

The benchmark's batched topics (``bench/throughput.py``: N predictions over 100 models, a label
for every second one, cut by the SDK's batcher into records of 1,000 events) are written before
any worker starts; then one worker at a time, in a fresh consumer group, reads them to the end,
with the alignment on (the default) and off (``STREAMPROC_LABEL_LEAD_S=86400``: either topic may
run a day ahead), alternated R times on one broker. Printed per run: events/s (processing time:
worker ready to committed offsets at the end, polled every 0.5 s), labels joined of the labels
written (``streamproc_label_joins_total``), peak RSS. Without alignment whichever topic is read
ahead overflows its side of the join; aligned, every label joins. ``--single``: the same events as
single-event records (topics ``tp-*``), the shape where one fetch of the labels topic covers far
more record time than one of the predictions topic.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput as tp

from streamproc.config import Settings
from streamproc.devkit.localkafka import LocalKafka
from streamproc.service.topics import ensure_topics

OFF = "86400"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=500_000, help="predictions (default 500000)")
    ap.add_argument("--rounds", type=int, default=2, help="on/off pairs, alternated (default 2)")
    ap.add_argument("--single", action="store_true", help="single-event records, not batched")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="streamproc-catch-up-"))
    broker = LocalKafka()
    try:
        bootstrap = broker.start(data_dir=work / "kafka")
        prefix = tp.PREFIX if args.single else tp.BATCHED_PREFIX
        settings = Settings(broker=bootstrap, topic_prefix=prefix, partitions=tp.PARTITIONS)
        asyncio.run(ensure_topics(settings, bootstrap))
        if args.single:
            preds, records = asyncio.run(tp.produce_all(bootstrap, args.events))
            events = records = preds + records
        else:
            events, records = asyncio.run(tp.produce_batched(bootstrap, args.events))
        labels = (args.events + 1) // 2
        print(f"{events:,} events in {records:,} records; {labels:,} labels", flush=True)
        for r in range(args.rounds):
            for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
                if mode == "off":
                    os.environ["STREAMPROC_LABEL_LEAD_S"] = OFF
                else:
                    os.environ.pop("STREAMPROC_LABEL_LEAD_S", None)
                ready, done, rss, joined = tp.run_workers(
                    bootstrap, work, f"catch-up-{mode}-{r}", 1, events, 1800, prefix=prefix
                )
                print(f"round {r}, alignment {mode:>3}: {events / (done - ready):>9,.0f} events/s, "
                      f"labels joined {joined:,} of {labels:,} ({joined / labels:.1%}), "
                      f"peak RSS {rss / 2**20:,.0f} MiB", flush=True)  # fmt: skip
    finally:
        os.environ.pop("STREAMPROC_LABEL_LEAD_S", None)
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
