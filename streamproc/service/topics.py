"""Create the source topics with the configured partition count (faust only creates its own)."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streamproc.config import TOPICS, Settings

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings, bootstrap: str) -> None:
    """Create every topic of the design that does not exist; check the partitions of the rest.

    Raises
    ------
    RuntimeError
        When an existing topic has another partition count: co-partitioned joins would break.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id=f"{settings.app_id}-admin",
        **settings.security.aiokafka_kwargs(),
    )
    try:
        await admin.start()
    except Exception as exc:
        # aiokafka says only "Unable to bootstrap"; say why (refused password, TLS, protocol).
        raise ConnectionError(await settings.security.explain(bootstrap, exc)) from None
    try:
        names = [settings.topic(t) for t in TOPICS]
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            n,
                            num_partitions=settings.partitions,
                            replication_factor=settings.replication,
                            # Oversized records reach the worker and become dead letters with
                            # a reason, instead of vanishing into a producer-side error.
                            topic_configs={"max.message.bytes": str(8 * 1024 * 1024)},
                        )
                        for n in missing
                    ]
                )
                log.info("created topics %s with %d partitions", missing, settings.partitions)
            except TopicAlreadyExistsError:
                pass  # another worker created them first
        described = await admin.describe_topics(names)
        counts = {d["topic"]: len(d["partitions"]) for d in described}
        wrong = {t: n for t, n in counts.items() if n and n != settings.partitions}
        if wrong:
            raise RuntimeError(
                f"topics {wrong} do not have {settings.partitions} partitions; all streamproc "
                "topics must have the same count (they are joined by model_id): set "
                "STREAMPROC_PARTITIONS to match, or recreate the topics."
            )
    finally:
        await admin.close()
