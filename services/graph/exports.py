"""graph's part of a data export (services.common.exports): whom the user follows, who follows
them, whom they blocked and muted, the follow requests they sent and those waiting for them."""

from __future__ import annotations

from services.common.exports import user_list

KINDS = {
    "following": user_list("following", "target_id"),
    "followers": user_list("followers", "follower_id"),
    "blocks": user_list("blocks", "target_id"),
    "mutes": user_list("mutes", "target_id"),
    "follow_requests_sent": user_list("sent_follow_requests", "target_id"),
    "follow_requests_received": user_list("follow_requests", "requester_id"),
}
