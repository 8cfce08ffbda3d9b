"""Realtime's Redis keys: the one place they are spelled (services.realtime owns them all).

Per user (hash-tagged by user id, so one user's keys share a cluster slot):
  rt:{uid}:events         the replay buffer: a stream of the user's last events (at least
                          PICTOR_REALTIME_REPLAY_EVENTS); its ids are the events' ids
  rt:{uid}:seen:<event>   a bus event already put in the buffer (redelivery adds nothing)
  rt:{uid}:conns          the user's open streams, any replica: zset conn id -> expiry (ms)
Per ticket:
  rt:ticket:<sha256>      a stream ticket's user id, until it is spent or expires
Shared:
  rt:wake:{uid}           pub/sub channel: "the buffer grew"; replicas with the user's
                          streams read the buffer then
  rt:live                 zset user -> latest expiry of their streams (who has one open)
  rt:active               zset user -> last activity (ms)
  rt:presence             hash user -> the presence state last recorded (ONLINE, IDLE, OFFLINE)
  uc:acts, uc:visits      zsets user -> last act, last visit (ms): the classifier's inputs
  uc:recheck              set of users whose follower count moved (POPULAR to check)
  uc:{uid}                the user's classes, comma-separated ("ACTIVE,POPULAR")
  uc:class:<CLASS>        set of the users holding that class (for membership checks)
"""

from __future__ import annotations

LIVE = "rt:live"
ACTIVE = "rt:active"
PRESENCE = "rt:presence"
ACTS = "uc:acts"
VISITS = "uc:visits"
RECHECK = "uc:recheck"


def events(user_id: int) -> str:
    return f"rt:{{{user_id}}}:events"


def seen(user_id: int, event_id: str) -> str:
    return f"rt:{{{user_id}}}:seen:{event_id}"


def conns(user_id: int) -> str:
    return f"rt:{{{user_id}}}:conns"


def wake(user_id: int) -> str:
    return f"rt:wake:{user_id}"


def user_of_wake(channel: str) -> int:
    return int(channel.rsplit(":", 1)[1])


def ticket(digest: str) -> str:
    return f"rt:ticket:{digest}"


def classes(user_id: int) -> str:
    return f"uc:{{{user_id}}}"


def class_members(label: str) -> str:
    return f"uc:class:{label}"
