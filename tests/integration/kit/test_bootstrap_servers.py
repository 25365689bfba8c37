"""KAFKA_BOOTSTRAP_SERVERS may list several brokers (the settings accept host:port,host:port):
a service must then bootstrap from any of them, not parse the whole list as one host name."""

from __future__ import annotations

from shared.kafka import make_broker, start_broker


async def test_a_service_bootstraps_from_any_broker_in_the_list(platform):
    servers = f"127.0.0.1:1,{platform.kafka_bootstrap_servers}"  # the first one answers nobody
    broker = make_broker(servers, client_id="ladder-test-bootstrap")
    try:
        await start_broker(broker, servers, timeout=15)
        assert await broker.ping(5)
    finally:
        await broker.stop()
