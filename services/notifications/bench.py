"""How long a like takes to reach its author's notifications: ``python -m services.notifications.bench``.

Against a running stack (``make run`` in another terminal; PICTOR_GATEWAY_PORT
and PICTOR_REDIS_URL say where). ``--samples`` times, a new fan likes the
author's post, the author having read everything before; timed from the
like's request until:
  - its "like" event is on the stream `events:engagement` (like → outbox → relay: the first hop);
  - its notification.changed event is on the stream `events:notifications`
    (like → outbox → relay → notifier → outbox → relay), what the real-time
    stream delivers from;
  - `GET /v1/notifications:unreadCount` through the gateway says 1.
Prints one JSON line per measure, like services.mesh.relay_bench::

    {"op": "notifications.like_to_changed_event", "samples": N, "ack_p50_ms": N, "p50_ms": N, ...}
"""

from __future__ import annotations

import argparse
import json
import time

from services.common.config import load_settings
from services.common.dependencies import sync_redis
from services.common.events import decode
from services.mesh.relay_bench import Gateway, jpeg, summary, wait_until


def run(samples: int) -> list[dict]:
    settings = load_settings()
    gw, bus = Gateway(settings.gateway_port), sync_redis(settings.redis_url)
    author = gw.register()
    token, author_id = author["access_token"], int(author["user"]["id"])
    media = gw.call("POST", "/v1/media", token, raw=jpeg(), content_type="image/jpeg")
    post = gw.call("POST", "/v1/posts", token, body={"media_ids": [media["id"]]})["id"]
    fans = [gw.register()["access_token"] for _ in range(samples)]
    acks, relayed, on_stream, in_count = [], [], [], []
    for fan in fans:
        gw.call("POST", "/v1/notifications:markRead", token)
        last = (bus.xrevrange("events:notifications", count=1) or [(b"0-0", None)])[0][0]
        last_like = (bus.xrevrange("events:engagement", count=1) or [(b"0-0", None)])[0][0]
        start = time.perf_counter()
        gw.call("POST", f"/v1/posts/{post}/like", fan)
        acks.append((time.perf_counter() - start) * 1000)

        def like_relayed() -> bool:
            nonlocal last_like
            for _, messages in bus.xread({"events:engagement": last_like}, block=5) or []:
                for message_id, raw in messages:
                    last_like = message_id
                    event = decode("engagement", message_id, raw)
                    if event.type == "like" and event.data.get("post_id") == int(post):
                        return True
            return False

        relayed.append((wait_until(like_relayed) - start) * 1000)

        def changed() -> bool:
            nonlocal last
            for _, messages in bus.xread({"events:notifications": last}, block=5) or []:
                for message_id, raw in messages:
                    last = message_id
                    event = decode("notifications", message_id, raw)
                    if event.data.get("user_id") == author_id and event.data.get("group_json"):
                        return True
            return False

        on_stream.append((wait_until(changed) - start) * 1000)
        in_count.append((wait_until(lambda: gw.call("GET", "/v1/notifications:unreadCount", token)["count"] == "1")
                         - start) * 1000)
    bus.close()
    return [summary("notifications.like_to_like_event", acks, relayed),
            summary("notifications.like_to_changed_event", acks, on_stream),
            summary("notifications.like_to_unread_count", acks, in_count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    for line in run(parser.parse_args().samples):
        print(json.dumps(line))


if __name__ == "__main__":
    main()
