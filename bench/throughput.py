"""Throughput benchmark: a worker against the raw client stack on the same topics.

    python bench/throughput.py [--events N] [--json FILE] [--quick] [--no-peer]

One fresh local Kafka broker (temp dir, removed at the end) and one topic set (prefix ``tp-``,
4 partitions). N prediction events (default 500k, ``--quick`` 50k) with 10 numeric features over
100 models, keyed by ``model_id``, plus a label for every second prediction on the labels topic.
**Events counted = prediction records + label records** (1.5 N).

- (a) raw: one plain ``AIOKafkaConsumer`` (no group, earliest) reads predictions + labels and
  decodes every value with ``orjson.loads``: the client stack's limit on this machine.
- (b) one ``streamproc worker`` process (default policy, own app id) started after producing;
  processing time = (group lag on predictions + labels reaches 0) - (worker ready). The lag is
  polled every 0.5 s, so figures are within about a second.
- (c) two worker processes in one new group on the batched topics (below), measured the same way.
- (d) ``bench/faust_floor.py``: a faust worker whose agent only decodes (same batching and
  group settings), measured the same way: the framework's own per-event cost.
- (a') raw on the same events batched as the SDK sends them (topics ``tb-*``): the SDK's own
  batcher (``streamproc.client.loggers._Batcher``, default 1,000 events per model and record,
  records under 1 MB) cuts the same predictions and labels into columnar records; one plain consumer
  reads them and decodes each with ``orjson.loads``. Events counted, not records.
- (b') one worker on the batched topics, measured as (b).
- ratio = b' / a (the batched worker against the raw client on single-event records).
- (k) one worker on the same number of events over 10,000 models (topics ``tk-*``, batched by
  the SDK's batcher: 50 predictions per model, so records of at most 50 events), measured as (b);
  its peak RSS (``VmHWM``) is read before it stops.
- (p) the peer, ``bench/peer_quix.py``: what a user would write without streamproc, a
  quix-streams application running river's ADWIN per feature and on the joined error, on the
  single-event topics, in its own virtual environment (made once in
  ``~/.cache/streamproc/bench-peer-venv``), measured as (b). ``--no-peer`` skips it.
- (e) the pure core alone, offline: ``route()`` over the state run's 300k encoded records
  (decode, validate, apply to the model's monitor), timed in this process.
- state per model: offline (no Kafka), one monitor per model fed 2000 predictions and 1000
  labels through ``route``; the mean snapshot size, split into label-join buffer, training
  window and detectors.
- 10k models: in a fresh subprocess, 10k monitors each fed 50 predictions and 25 labels;
  peak RSS (``VmHWM`` of /proc/self/status: ``ru_maxrss`` would inherit the parent's peak
  across exec) and the total snapshot size.

JSON keys: ``raw_events_per_s``, ``worker_events_per_s``, ``two_workers_events_per_s`` (batched),
``ratio``, ``state_bytes_per_model``, ``faust_floor_events_per_s``,
``core_events_per_s``, ``raw_batched_events_per_s``, ``batched_worker_events_per_s``,
``batched_worker_events_per_s_10k_models``, ``rss_bytes_10k_models`` (the (k) worker's peak),
``core_rss_bytes_10k_models`` (the offline run), ``peer_events_per_s``; ``labels`` and
``labels_joined`` (per worker phase: the sum of the workers' ``streamproc_label_joins_total``;
half the models get labels, so all of them join when nothing is evicted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamproc.config import Settings

PREFIX = "tp-"
PARTITIONS = 4
MODELS = 100
FEATURES = 10
SOURCE_TOPICS = (PREFIX + "predictions", PREFIX + "labels")
BATCHED_PREFIX = "tb-"
BATCHED_TOPICS = (BATCHED_PREFIX + "predictions", BATCHED_PREFIX + "labels")
FLEET_MODELS = 10_000
FLEET_PREFIX = "tk-"
FLEET_TOPICS = (FLEET_PREFIX + "predictions", FLEET_PREFIX + "labels")


# --------------------------------------------------------------------------- data


def prediction(i: int, model: int, ts: float, rng: random.Random) -> dict:
    return {
        "event_id": f"e{i}",
        "model_id": f"m{model:03d}",
        "model_version": "v1",
        "ts": ts,
        "prediction": rng.randint(0, 1),
        "features": {f"f{k}": round(rng.gauss(0.0, 1.0), 4) for k in range(FEATURES)},
    }


def label(i: int, model: int, ts: float, rng: random.Random) -> dict:
    return {"event_id": f"e{i}", "model_id": f"m{model:03d}", "ts": ts, "label": rng.randint(0, 1)}


async def produce_all(
    bootstrap: str, n: int, models: int = MODELS, topics: tuple[str, ...] = SOURCE_TOPICS
) -> tuple[int, int]:
    """N predictions over ``models`` models, a label for every even one; the record counts."""
    from aiokafka import AIOKafkaProducer

    rng = random.Random(7)
    t0 = time.time() - 3 * 86400  # event time in the past, one event per 10 ms
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=1024 * 1024, acks=1
    )
    await producer.start()
    preds = labels = 0
    try:
        futs = []
        for i in range(n):
            model = i % models
            key = f"m{model:03d}".encode()
            ts = t0 + i * 0.01
            futs.append(
                await producer.send(topics[0], orjson.dumps(prediction(i, model, ts, rng)), key=key)
            )
            preds += 1
            if i % 2 == 0:
                lab = orjson.dumps(label(i, model, ts + 1.0, rng))
                futs.append(await producer.send(topics[1], lab, key=key))
                labels += 1
            if len(futs) >= 20000:
                await asyncio.gather(*futs)
                futs = []
        await asyncio.gather(*futs)
    finally:
        await producer.stop()
    return preds, labels


async def produce_batched(
    bootstrap: str, n: int, models: int = MODELS, topics: tuple[str, ...] = BATCHED_TOPICS
) -> tuple[int, int]:
    """The same events as :func:`produce_all`, batched by the SDK's batcher; (events, records)."""
    from aiokafka import AIOKafkaProducer

    from streamproc.client.loggers import _Batcher

    rng = random.Random(7)
    t0 = time.time() - 3 * 86400
    batchers = {  # the SDK's defaults; no clock: at this rate the size cut comes first
        "prediction": _Batcher("prediction", 1000, float("inf"), 1_000_000),
        "label": _Batcher("label", 1000, float("inf"), 1_000_000),
    }
    topic = {"prediction": topics[0], "label": topics[1]}
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=1024 * 1024, acks=1
    )
    await producer.start()
    events = records = 0
    try:
        futs = []

        async def send(kind: str, ready: list) -> None:
            nonlocal records
            for key, value, _ in ready:
                futs.append(await producer.send(topic[kind], value, key=key))
                records += 1

        for i in range(n):
            model = i % models
            key = f"m{model:03d}".encode()
            ts = t0 + i * 0.01
            raw = orjson.dumps(prediction(i, model, ts, rng))
            await send("prediction", batchers["prediction"].add(key, raw, 0.0))
            events += 1
            if i % 2 == 0:
                lab = orjson.dumps(label(i, model, ts + 1.0, rng))
                await send("label", batchers["label"].add(key, lab, 0.0))
                events += 1
            if len(futs) >= 200:
                await asyncio.gather(*futs)
                futs = []
        for kind, b in batchers.items():
            await send(kind, b.all())
        await asyncio.gather(*futs)
    finally:
        await producer.stop()
    return events, records


# --------------------------------------------------------------------------- (a) raw


async def raw_read(
    bootstrap: str, total: int, topics: tuple[str, ...] = SOURCE_TOPICS, batched: bool = False
) -> tuple[float, int]:
    """Seconds to read and decode ``total`` events; (seconds, events seen)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        # The worker's fetch size (CONSUMER_FETCH_BYTES): batched records are up to 1 MB.
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        seen = 0
        t0 = time.perf_counter()
        while seen < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10000)
            for msgs in batches.values():
                if batched:
                    for m in msgs:
                        seen += len(orjson.loads(m.value)["event_id"])
                else:
                    for m in msgs:
                        orjson.loads(m.value)
                    seen += len(msgs)
        return time.perf_counter() - t0, seen
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- (b), (c) workers


def run_workers(
    bootstrap: str,
    work: Path,
    app_id: str,
    count: int,
    total: int,
    timeout: float,
    prefix: str = PREFIX,
):
    """Start ``count`` workers in group ``app_id``; (ready_s, caught_up_s, peak RSS bytes,
    labels joined).

    The peak RSS is the largest ``VmHWM`` of the worker processes, and the labels joined the
    sum of their ``streamproc_label_joins_total``, both read before they stop: every label
    joins its prediction unless the join evicted one of the two (a worker catching up on both
    topics once evicted labels that ran ahead of their predictions).
    """
    from streamproc.devkit.harness import WorkerProcess, free_port, group_lag

    workers = []
    try:
        t0 = time.perf_counter()
        for k in range(count):
            s = Settings(
                broker=bootstrap,
                topic_prefix=prefix,
                partitions=PARTITIONS,
                data_dir=work / f"{app_id}-{k}",
                app_id=app_id,
                web_port=free_port(),
            )
            s.data_dir.mkdir(parents=True, exist_ok=True)
            workers.append(WorkerProcess(s, bootstrap, work / f"{app_id}-{k}.log").start())
        for w in workers:
            w.wait_assigned(120)
        ready = time.perf_counter() - t0
        group = prefix + app_id  # the app prefixes its consumer group as it prefixes topics
        topics = tuple(prefix + t.removeprefix(PREFIX) for t in SOURCE_TOPICS)
        deadline = time.perf_counter() + timeout
        while True:
            lag = asyncio.run(group_lag(bootstrap, group, topics))
            if lag == 0:
                break
            for w in workers:
                if w.proc is not None and w.proc.poll() is not None:
                    raise RuntimeError(f"worker exited early:\n{w.tail()}")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{app_id}: still {lag} of {total} records behind")
            time.sleep(0.5)
        done = time.perf_counter() - t0
        rss = max(peak_rss(w.proc.pid) for w in workers if w.proc is not None)
        return ready, done, rss, sum(labels_joined(w.settings.web_port) for w in workers)
    finally:
        for w in workers:
            w.stop()


def labels_joined(web_port: int) -> int:
    """The labels a worker joined, from its ``/metrics``."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    return round(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                     if line.startswith("streamproc_label_joins_total")))  # fmt: skip


def peak_rss(pid: int) -> int:
    """``VmHWM`` of a live process, bytes (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_consumer(
    name: str,
    cmd: list[str],
    ready_line: str,
    group: str,
    bootstrap: str,
    log: Path,
    timeout: float,
) -> tuple[float, float]:
    """Run a consumer process until its group's committed offsets reach the end of the source
    topics; (ready_s: until ``ready_line`` is logged, done_s). Measured as the workers are."""
    from streamproc.devkit.harness import group_lag

    t0 = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        while ready_line not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.perf_counter() - t0 > 120:
                raise RuntimeError(f"{name} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        ready = time.perf_counter() - t0
        # Until its first commit a group has no offsets and its lag is the whole topic.
        while asyncio.run(group_lag(bootstrap, group, SOURCE_TOPICS)) > 0:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{log.read_text()[-3000:]}")
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"{name} did not catch up")
            time.sleep(0.5)
        return ready, time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(60)


def run_floor(bootstrap: str, work: Path, timeout: float) -> tuple[float, float]:
    """Phase (d): bench/faust_floor.py, a faust agent that only decodes; (ready_s, done_s)."""
    from streamproc.devkit.harness import free_port

    cmd = [sys.executable, str(Path(__file__).with_name("faust_floor.py")), bootstrap, PREFIX,
           "bench-floor", str(free_port()), str(work / "floor")]  # fmt: skip
    return run_consumer("faust floor worker", cmd, "Worker ready", PREFIX + "bench-floor",
                        bootstrap, work / "floor.log", timeout)  # fmt: skip


# --------------------------------------------------------------------------- (p) the peer

PEER_REQUIREMENTS = ("quixstreams>=3.28,<4", "river>=0.25")


def peer_python() -> Path:
    """The peer's interpreter: a virtual environment of its own, made once and cached.

    quix-streams brings its own Kafka client (confluent-kafka) and pins; it is not a dependency
    of streamproc, so it never shares streamproc's environment.
    """
    venv = Path.home() / ".cache" / "streamproc" / "bench-peer-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating the peer's environment in {venv} ({', '.join(PEER_REQUIREMENTS)})")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS], check=True)
    return python


def run_peer(bootstrap: str, work: Path, timeout: float) -> tuple[float, float]:
    """Phase (p): bench/peer_quix.py on the single-event topics; (ready_s, done_s)."""
    cmd = [str(peer_python()), str(Path(__file__).with_name("peer_quix.py")), bootstrap, PREFIX,
           "bench-peer", str(work / "peer-state")]  # fmt: skip
    return run_consumer("peer", cmd, "peer ready", "bench-peer", bootstrap, work / "peer.log",
                        timeout)  # fmt: skip


def topic_count(bootstrap: str, topic: str) -> int:
    """Records in ``topic``: the lag of a group that never committed."""
    from streamproc.devkit.harness import group_lag

    return asyncio.run(group_lag(bootstrap, "bench-nobody", [topic]))


# --------------------------------------------------------------------------- state size


def state_per_model(models: int, preds: int) -> dict:
    """Offline monitors fed ``preds`` predictions and preds/2 labels each; snapshot sizes."""
    from streamproc.core.events import SourceRef
    from streamproc.core.router import Monitors, route

    rng = random.Random(11)
    monitors = Monitors()
    t0 = time.time() - 3 * 86400
    offs = {"predictions": 0, "labels": 0}

    records: list[tuple[str, bytes]] = []
    for j in range(preds):
        for m in range(models):
            i = j * models + m
            ts = t0 + i * 0.01
            records.append(("predictions", orjson.dumps(prediction(i, m, ts, rng))))
            if j % 2 == 0:
                records.append(("labels", orjson.dumps(label(i, m, ts + 1.0, rng))))
    # The core alone, timed: decode, validate, apply to the model's monitor (no Kafka, no faust).
    started = time.perf_counter()
    for topic, raw in records:
        out = route(monitors, topic, raw, SourceRef(topic, 0, offs[topic]), 0.0)
        offs[topic] += 1
        assert out.dead_letter is None, out.dead_letter
    core_rate = len(records) / (time.perf_counter() - started)
    del records  # keep this process small: the 10k-model run is measured in a child
    total = join = examples = detectors = 0
    for mon in monitors.live.values():
        total += len(mon.snapshot())
        join += len(orjson.dumps(mon.join.state()))
        examples += len(orjson.dumps(mon.examples.rows()))
        detectors += len(orjson.dumps({k: d.state() for k, d in mon.detectors.items()}))
        n_det = len(mon.detectors)
    return {
        "core_events_per_s": core_rate,
        "snapshot": total / models,
        "join": join / models,
        "examples": examples / models,
        "detectors": detectors / models,
        "n_detectors": n_det,
    }


RSS_CODE = r"""
import json, random, sys, time
import orjson
sys.path.insert(0, sys.argv[1])
from streamproc.core.events import SourceRef
from streamproc.core.router import Monitors, route
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) * 1024
base = hwm()
models, preds = int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(5)
mons = Monitors()
t0 = time.time() - 3 * 86400
offs = {"predictions": 0, "labels": 0}
for j in range(preds):
    for m in range(models):
        i = j * models + m
        mid = f"m{m:05d}"
        ts = t0 + i * 0.01
        feats = {f"f{k}": round(rng.gauss(0, 1), 4) for k in range(10)}
        p = {"event_id": f"e{i}", "model_id": mid, "model_version": "v1", "ts": ts,
             "prediction": rng.randint(0, 1), "features": feats}
        src = SourceRef("predictions", 0, offs["predictions"])
        route(mons, "predictions", orjson.dumps(p), src, 0.0)
        offs["predictions"] += 1
        if j % 2 == 0:
            lab = {"event_id": f"e{i}", "model_id": mid, "ts": ts + 1, "label": rng.randint(0, 1)}
            route(mons, "labels", orjson.dumps(lab), SourceRef("labels", 0, offs["labels"]), 0.0)
            offs["labels"] += 1
mons.dirty.clear()
rss = hwm()
snap = sum(len(m.snapshot()) for m in mons.live.values())
dets = sum(len(m.detectors) for m in mons.live.values()) / len(mons.live)
print(json.dumps({"rss": rss, "base": base, "snapshots": snap, "detectors": dets}))
"""


def rss_run(models: int, preds: int) -> dict:
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", RSS_CODE, root, str(models), str(preds)],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, help="prediction events (default 500000; quick 50000)")
    ap.add_argument("--json", type=Path, help="write the figures to this JSON file")
    ap.add_argument("--quick", action="store_true", help="50k predictions")
    ap.add_argument("--no-peer", action="store_true", help="skip (p), the quix-streams peer")
    args = ap.parse_args()
    n = args.events or (50_000 if args.quick else 500_000)

    # SIGTERM cleans up like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    started = time.perf_counter()
    print(f"parameters: {n} predictions ({FEATURES} numeric features, {MODELS} models, keyed by "
          f"model_id), labels for every second one; topics {PREFIX}*, {PARTITIONS} partitions; "
          "events = prediction + label records")  # fmt: skip

    from streamproc.devkit.localkafka import LocalKafka
    from streamproc.service.topics import ensure_topics

    work = Path(tempfile.mkdtemp(prefix="streamproc-throughput-"))
    broker = LocalKafka()
    try:
        t = time.perf_counter()
        bootstrap = broker.start(data_dir=work / "kafka")
        print(f"broker {bootstrap} up in {time.perf_counter() - t:.1f}s (data in {work})")
        settings = Settings(broker=bootstrap, topic_prefix=PREFIX, partitions=PARTITIONS)
        asyncio.run(ensure_topics(settings, bootstrap))
        batched_settings = Settings(
            broker=bootstrap, topic_prefix=BATCHED_PREFIX, partitions=PARTITIONS
        )
        asyncio.run(ensure_topics(batched_settings, bootstrap))
        fleet_settings = Settings(
            broker=bootstrap, topic_prefix=FLEET_PREFIX, partitions=PARTITIONS
        )
        asyncio.run(ensure_topics(fleet_settings, bootstrap))

        t = time.perf_counter()
        preds, labels = asyncio.run(produce_all(bootstrap, n))
        total = preds + labels
        dt = time.perf_counter() - t
        print(f"produced {preds} predictions + {labels} labels = {total} records in {dt:.1f}s "
              f"({total / dt:,.0f}/s)")  # fmt: skip

        t = time.perf_counter()
        events_b, records_b = asyncio.run(produce_batched(bootstrap, n))
        assert events_b == total, (events_b, total)
        print(f"produced the same {events_b} events in {records_b} batched records in "
              f"{time.perf_counter() - t:.1f}s")  # fmt: skip

        t = time.perf_counter()
        events_k, records_k = asyncio.run(produce_batched(bootstrap, n, FLEET_MODELS, FLEET_TOPICS))
        assert events_k == total, (events_k, total)
        print(f"produced the same number of events over {FLEET_MODELS} models in {records_k} "
              f"batched records in {time.perf_counter() - t:.1f}s")  # fmt: skip

        raw_s, seen = asyncio.run(raw_read(bootstrap, total))
        raw_rate = seen / raw_s
        print(f"(a) raw aiokafka + orjson: {seen} records in {raw_s:.2f}s")
        raw_bs, seen_b = asyncio.run(raw_read(bootstrap, total, BATCHED_TOPICS, batched=True))
        raw_b_rate = seen_b / raw_bs
        print(f"(a') raw on batched records: {seen_b} events in {raw_bs:.2f}s")

        timeout = max(600.0, total / 100)  # a busy machine: only "hung" fails
        ready1, done1, _, joined1 = run_workers(bootstrap, work, "bench-one", 1, total, timeout)
        proc1 = done1 - ready1
        print(f"(b) one worker: ready after {ready1:.1f}s, caught up at {done1:.1f}s")
        ready_b, done_b, _, joined_b = run_workers(
            bootstrap, work, "bench-batched", 1, total, timeout, prefix=BATCHED_PREFIX
        )
        proc_b = done_b - ready_b
        print(f"(b') one worker, batched: ready after {ready_b:.1f}s, caught up at {done_b:.1f}s")
        ready2, done2, _, joined2 = run_workers(
            bootstrap, work, "bench-two", 2, total, timeout, prefix=BATCHED_PREFIX
        )
        proc2 = done2 - ready2
        print(f"(c) two workers, batched: ready after {ready2:.1f}s, caught up at {done2:.1f}s")
        ready_k, done_k, rss_k, joined_k = run_workers(
            bootstrap, work, "bench-fleet", 1, total, timeout, prefix=FLEET_PREFIX
        )
        proc_k = done_k - ready_k
        print(f"(k) one worker, {FLEET_MODELS} models, batched: ready after {ready_k:.1f}s, "
              f"caught up at {done_k:.1f}s, peak RSS {rss_k / 2**20:,.0f} MiB")  # fmt: skip
        ready_f, done_f = run_floor(bootstrap, work, timeout)
        proc_f = done_f - ready_f
        print(f"(d) faust floor: ready after {ready_f:.1f}s, caught up at {done_f:.1f}s")
        proc_p = None
        if not args.no_peer:
            ready_p, done_p = run_peer(bootstrap, work, timeout)
            proc_p = done_p - ready_p
            print(f"(p) peer (quix-streams + river ADWIN): ready after {ready_p:.1f}s, "
                  f"caught up at {done_p:.1f}s")  # fmt: skip
        requests = topic_count(bootstrap, PREFIX + "retrain-requests")
        dead = topic_count(bootstrap, PREFIX + "dead-letters")
        requests_b = topic_count(bootstrap, BATCHED_PREFIX + "retrain-requests")
        dead_b = topic_count(bootstrap, BATCHED_PREFIX + "dead-letters")
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)

    t = time.perf_counter()
    st = state_per_model(MODELS, 2000)
    print(f"state per model computed in {time.perf_counter() - t:.1f}s")
    t = time.perf_counter()
    rss = rss_run(10_000, 50)
    print(f"10k-model run in {time.perf_counter() - t:.1f}s")

    w1, w2, floor = total / proc1, total / proc2, total / proc_f
    wb = total / proc_b
    wk = total / proc_k
    peer = total / proc_p if proc_p else None
    figures = {
        "raw_events_per_s": round(raw_rate, 1),
        "worker_events_per_s": round(w1, 1),
        "two_workers_events_per_s": round(w2, 1),
        "ratio": round(wb / raw_rate, 4),
        "raw_batched_events_per_s": round(raw_b_rate, 1),
        "batched_worker_events_per_s": round(wb, 1),
        "state_bytes_per_model": round(st["snapshot"]),
        "batched_worker_events_per_s_10k_models": round(wk, 1),
        "rss_bytes_10k_models": rss_k,
        "core_rss_bytes_10k_models": int(rss["rss"]),
        "peer_events_per_s": round(peer, 1) if peer else None,
        "faust_floor_events_per_s": round(floor, 1),
        "core_events_per_s": round(st["core_events_per_s"], 1),
        "labels": labels,
        "labels_joined": {"b": joined1, "b'": joined_b, "c": joined2, "k": joined_k},
    }

    print()
    print(f"{'measure':<46} {'value':>16}")
    rows = [
        ("(a) raw aiokafka + orjson, events/s", f"{raw_rate:,.0f}"),
        ("(b) one worker, events/s", f"{w1:,.0f}"),
        ("    ready / processing time, s", f"{ready1:.1f} / {proc1:.1f}"),
        (f"    labels joined (of {labels:,})", f"{joined1:,}"),
        ("(c) two workers on batched records, events/s", f"{w2:,.0f}"),
        ("    ready / processing time, s", f"{ready2:.1f} / {proc2:.1f}"),
        (f"    labels joined (of {labels:,})", f"{joined2:,}"),
        ("(d) faust agent that only decodes, events/s", f"{floor:,.0f}"),
        ("(a') raw on batched records, events/s", f"{raw_b_rate:,.0f}"),
        (f"     records ({total / records_b:,.0f} events each)", f"{records_b:,}"),
        ("(b') one worker on batched records, events/s", f"{wb:,.0f}"),
        ("    ready / processing time, s", f"{ready_b:.1f} / {proc_b:.1f}"),
        (f"    labels joined (of {labels:,})", f"{joined_b:,}"),
        ("ratio (b'/a)", f"{wb / raw_rate:.3f}"),
        ("ratio b'/a'", f"{wb / raw_b_rate:.3f}"),
        ("ratio b'/b (batched over single-event worker)", f"{wb / w1:.2f}"),
        ("ratio b/a", f"{w1 / raw_rate:.3f}"),
        ("ratio d/a (the framework's own ceiling)", f"{floor / raw_rate:.3f}"),
        ("ratio b/d (streamproc's work within faust)", f"{w1 / floor:.3f}"),
        ("(e) the core alone (route(), no Kafka), events/s", f"{st['core_events_per_s']:,.0f}"),
        ("ratio e/a", f"{st['core_events_per_s'] / raw_rate:.3f}"),
        ("two workers / one worker (batched)", f"{w2 / wb:.2f}"),
        (f"(k) one worker, {FLEET_MODELS:,} models, batched, events/s", f"{wk:,.0f}"),
        ("    peak RSS of that worker, B", f"{rss_k:,}"),
        (f"    labels joined (of {labels:,})", f"{joined_k:,}"),
        ("(p) peer: quix-streams + river ADWIN, events/s", f"{peer:,.0f}" if peer else "skipped"),
        ("ratio b'/p (batched worker over the peer)", f"{wb / peer:.2f}" if peer else "-"),
        ("ratio b/p (single-event worker over the peer)", f"{w1 / peer:.2f}" if peer else "-"),
        ("retrain requests / dead letters (all runs)", f"{requests} / {dead}"),
        ("    same, batched topics", f"{requests_b} / {dead_b}"),
        ("state bytes per model (2000 preds, 1000 labels)", f"{st['snapshot']:,.0f}"),
        ("    of which label-join buffer", f"{st['join']:,.0f}"),
        ("    of which training window", f"{st['examples']:,.0f}"),
        (f"    of which detectors ({st['n_detectors']})", f"{st['detectors']:,.0f}"),
        ("core alone, RSS, 10k models (50 preds, 25 labels each), B", f"{rss['rss']:,}"),
        ("    interpreter + imports baseline, B", f"{rss['base']:,}"),
        ("    per model above baseline, B", f"{(rss['rss'] - rss['base']) / 10_000:,.0f}"),
        ("    snapshots total, B", f"{rss['snapshots']:,}"),
        ("    detectors per model", f"{rss['detectors']:.1f}"),
    ]
    for name, value in rows:
        print(f"{name:<46} {value:>16}")
    print()

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print("targets: b'/a >= 0.5 -> " + verdict(wb / raw_rate >= 0.5)
          + "; b'/a' >= 0.1 -> " + verdict(wb / raw_b_rate >= 0.1)
          + "; b/d >= 0.8 -> " + verdict(w1 / floor >= 0.8)
          + "; b'/p >= 3 -> " + (verdict(wb / peer >= 3) if peer else "not measured")
          + f"; {FLEET_MODELS} models >= 100k events/s -> " + verdict(wk >= 100_000)
          + " and under 2 GiB -> " + verdict(rss_k < 2**31)
          + "; two workers >= 1.6x one (batched) -> " + verdict(w2 >= 1.6 * wb)
          + " (this machine has 2 cores, shared with the broker and this script)")  # fmt: skip
    print("notes: events = prediction + label records; worker times exclude start-up until "
          "'Worker ready' and are measured by polling committed offsets every 0.5 s; the broker, "
          "the workers and this script share the machine's cores.")  # fmt: skip
    print(f"total runtime {time.perf_counter() - started:.0f}s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted; broker and workers stopped", file=sys.stderr)
        sys.exit(130)
