"""Realtime's dispatch worker: `python -m services.realtime.worker` (WorkerSpec "dispatch").

A member of the consumer group "realtime-dispatch" over the notifications,
messaging, media and presence topics (presence read by a consumer of its own:
services.realtime.dispatch.DIRECT_TOPICS): puts each event into the replay
buffers of the users it is for (services.realtime.dispatch), where the
replicas holding their streams hear of it. Every PICTOR_REALTIME_PRESENCE_SWEEP_MS it also settles presence
that time alone changed (a stream gone IDLE, the streams of a replica that
died). Run more of them (PICTOR_DISPATCH_REPLICAS) to dispatch faster.
"""

from __future__ import annotations

import asyncio

from services.common.clients import AccountsClient, GraphClient, MessagingClient
from services.common.config import events_claim_idle_ms
from services.common.events import Consumer
from services.common.server import Resources, every, run_worker, side_by_side
from services.realtime.adapters import Contacts, PresenceAudience
from services.realtime.buffer import ReplayBuffers
from services.realtime.config import RealtimeConfig
from services.realtime.dispatch import DIRECT_TOPICS, PRESENCE_TOPICS, Dispatcher
from services.realtime.presence import PresenceTracker
from services.realtime.repository import PostgresPresenceStore

GROUP = "realtime-dispatch"


async def work(resources: Resources, stop: asyncio.Event) -> None:
    redis = resources.redis()
    config = RealtimeConfig.from_env()
    channels = resources.channels()
    dispatcher = Dispatcher(redis, ReplayBuffers(redis, config.replay_events, config.replay_ttl_s),
                            PresenceAudience(GraphClient(channels), AccountsClient(channels), Contacts(MessagingClient(channels))))
    presence = PresenceTracker(redis, PostgresPresenceStore(await resources.database(max_size=2)), config)
    claim_idle_ms = events_claim_idle_ms()
    await side_by_side(Consumer(redis, GROUP, DIRECT_TOPICS, dispatcher.handle, claim_idle_ms=claim_idle_ms).run(stop),
                       Consumer(redis, GROUP, PRESENCE_TOPICS, dispatcher.handle, claim_idle_ms=claim_idle_ms).run(stop),
                       every(config.presence_sweep_ms / 1000, presence.sweep, stop))


def main() -> None:
    run_worker("dispatch", work)


if __name__ == "__main__":
    main()
