"""Ids for new rows: hotpath's sharded generator, one per logical shard."""

from __future__ import annotations

import random

from hotpath.ids import IdGenerator, shard_of

__all__ = ["IdAllocator", "shard_of"]


class IdAllocator:
    """Hands out ids in a given logical shard, or in a random one for new users.

    NOTE: the generator's uniqueness holds within one process. Running two
    replicas of one service needs disjoint sequence ranges per replica (not
    yet needed: the launcher runs one process per service).
    """

    def __init__(self, logical_shards: int) -> None:
        self.logical_shards = logical_shards
        self._generators: dict[int, IdGenerator] = {}

    def new_id(self, shard: int) -> int:
        generator = self._generators.get(shard)
        if generator is None:
            generator = self._generators[shard] = IdGenerator(shard)
        return generator.next_id()

    def new_id_in_random_shard(self) -> int:
        return self.new_id(random.randrange(self.logical_shards))
