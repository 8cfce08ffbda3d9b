"""services.common.cluster.call_each against the stack's Redis: the replies in the calls' order, and a
lone call sent alone, since a pipeline that holds a script asks SCRIPT EXISTS before it runs."""

from __future__ import annotations

import uuid

from redis.asyncio.client import Pipeline

from services.common.cluster import call_each


async def test_a_lone_script_call_is_one_command_and_many_answer_in_order(client, monkeypatch) -> None:
    asked: list[tuple] = []
    real = Pipeline.immediate_execute_command

    async def recorded(self, *args, **options):
        asked.append(args)
        return await real(self, *args, **options)

    monkeypatch.setattr(Pipeline, "immediate_execute_command", recorded)
    script = client.register_script("redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1] * 2")
    key = f"calls:{uuid.uuid4().hex}"
    assert await call_each(client, script, [([key], [21])]) == [42]
    assert await client.get(key) == b"21"
    assert asked == []  # no SCRIPT EXISTS first: EVALSHA (SCRIPT LOAD only if Redis lacked the script)
    keys = [f"calls:{{{uuid.uuid4().hex}}}" for _ in range(5)]
    assert await call_each(client, script, [([k], [n]) for n, k in enumerate(keys)]) == [2 * n for n in range(5)]
    assert [await client.get(k) for k in keys] == [str(n).encode() for n in range(5)]
