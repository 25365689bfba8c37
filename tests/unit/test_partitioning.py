"""Our murmur2 partitioning equals aiokafka's (and so the Java client's)."""

import os

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference

from shared.partitioning import murmur2, partition_for


def test_same_hash_as_aiokafka_for_every_tail_length():
    keys = [b"", b"a", b"ab", b"abc", b"abcd", "ticket-ü".encode()] + [
        os.urandom(n) for n in range(64) for _ in range(20)
    ]
    for key in keys:
        assert murmur2(key) == reference(key), key


def test_same_partition_as_the_default_partitioner():
    partitions = list(range(6))
    for _ in range(500):
        key = os.urandom(36)
        assert partition_for(key, 6) == DefaultPartitioner()(key, partitions, partitions)
