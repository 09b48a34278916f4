"""Two code trees of streamproc, one worker each, alternated on one broker: an A/B of a change.

    python bench/ab_trees.py TREE_A TREE_B [--events N] [--rounds R] [--shape SHAPE]

``TREE_A`` and ``TREE_B`` are checkouts of this repository (``git worktree add /tmp/before
<commit>``). The benchmark's topics of one shape (``bench/throughput.py``: ``batched``, 100
models in records of 1,000 events; ``single``, one event per record; ``fleet``, 10,000 models
in records of 50) are written once; then, R times, a worker of each tree (in that order, then
the reverse) reads them to the end in a fresh consumer group, measured as the benchmark's
workers are (worker ready to committed offsets at the end, polled every 0.5 s). A worker runs
the tree given through ``PYTHONPATH`` from a neutral directory, so nothing else is imported.
Printed per run: events/s, labels joined, peak RSS.
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


def produce(bootstrap: str, shape: str, n: int) -> tuple[str, int]:
    """The topics' prefix and the events written."""
    if shape == "single":
        preds, labels = asyncio.run(tp.produce_all(bootstrap, n))
        return tp.PREFIX, preds + labels
    if shape == "fleet":
        events, _ = asyncio.run(tp.produce_batched(bootstrap, n, tp.FLEET_MODELS, tp.FLEET_TOPICS))
        return tp.FLEET_PREFIX, events
    events, _ = asyncio.run(tp.produce_batched(bootstrap, n))
    return tp.BATCHED_PREFIX, events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("trees", nargs=2, type=Path, help="two checkouts of this repository")
    ap.add_argument("--events", type=int, default=500_000, help="predictions (default 500000)")
    ap.add_argument("--rounds", type=int, default=2, help="A/B pairs, alternated (default 2)")
    ap.add_argument("--shape", choices=("batched", "single", "fleet"), default="batched")
    args = ap.parse_args()
    trees = [t.resolve() for t in args.trees]
    for tree in trees:
        if not (tree / "streamproc" / "__init__.py").is_file():
            raise SystemExit(f"{tree}: not a checkout of streamproc (no streamproc/__init__.py)")
    work = Path(tempfile.mkdtemp(prefix="streamproc-ab-"))
    broker = LocalKafka()
    here = Path.cwd()
    try:
        bootstrap = broker.start(data_dir=work / "kafka")
        prefixes = {"single": tp.PREFIX, "fleet": tp.FLEET_PREFIX, "batched": tp.BATCHED_PREFIX}
        settings = Settings(
            broker=bootstrap, topic_prefix=prefixes[args.shape], partitions=tp.PARTITIONS
        )
        asyncio.run(ensure_topics(settings, bootstrap))
        prefix, events = produce(bootstrap, args.shape, args.events)
        print(f"{events:,} events ({args.shape})", flush=True)
        os.chdir(work)  # `python -m` puts the working directory first on the path
        for r in range(args.rounds):
            for k, tree in enumerate(trees if r % 2 == 0 else trees[::-1]):
                os.environ["PYTHONPATH"] = str(tree)
                ready, done, rss, joined = tp.run_workers(
                    bootstrap, work, f"ab-{r}-{k}", 1, events, 1800, prefix=prefix
                )
                print(f"round {r}, {tree}: {events / (done - ready):>9,.0f} events/s, "
                      f"labels joined {joined:,}, peak RSS {rss / 2**20:,.0f} MiB",
                      flush=True)  # fmt: skip
    finally:
        os.environ.pop("PYTHONPATH", None)
        os.chdir(here)
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
