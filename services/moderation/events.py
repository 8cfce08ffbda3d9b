"""Moderation's events (topic "moderation"), written to the target's shard outbox with the action.

Each owner consumes them and applies the effect to its own data, idempotently:

  moderation.content_hidden    {target_type, target_id, owner_id, moderator_id}: posts hides the post
                               (and drops it from caches and its author's timeline), the feed takes it
                               out of feeds, search out of its index
  moderation.account_suspended {user_id, moderator_id}: accounts refuses sign-in and refresh and revokes
                               the sessions; posts hides every post of the user; search drops the user
                               and their posts; the feed drops their posts from feeds
"""

from __future__ import annotations

TOPIC = "moderation"
CONTENT_HIDDEN = "moderation.content_hidden"
ACCOUNT_SUSPENDED = "moderation.account_suspended"
