"""Start a demo namespace afresh: delete and recreate its topics (6 partitions each) and drop
its services' schemas, so the KPIs of a demo are those of the demo alone.

    python -m simulator.reset --prefix demo. --schemas intake_demo router_demo escalation_demo metrics_demo
"""

from __future__ import annotations

import argparse
import asyncio
import os

from aiokafka.admin import AIOKafkaAdminClient

from shared.db import drop_schemas
from shared.kafka import client_options, create_topics
from shared.topics import Topics


async def reset(bootstrap: str, database_url: str, prefix: str, schemas: list[str], partitions: int = 6) -> None:
    if not prefix:
        raise SystemExit("refusing to reset the unprefixed production topics")
    topics = Topics.prefixed(prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics()) & set(topics.all)
        if existing:
            await admin.delete_topics(list(existing))
            while set(await admin.list_topics()) & existing:  # noqa: ASYNC110 - the broker deletes asynchronously
                await asyncio.sleep(0.5)
    finally:
        await admin.close()
    await create_topics(bootstrap, topics.all, partitions)
    await drop_schemas(database_url, *schemas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--schemas", nargs="*", default=[])
    args = parser.parse_args()
    asyncio.run(
        reset(
            os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
            os.environ.get("DATABASE_URL", "postgresql://ladder:ladder@localhost:5432/ladder"),
            args.prefix,
            args.schemas,
        )
    )
    print(f"reset: topics {', '.join(Topics.prefixed(args.prefix).all)}; schemas {', '.join(args.schemas)}")


if __name__ == "__main__":
    main()
