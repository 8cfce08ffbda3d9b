-- The accounts a user blocks, newest first (GET /v1/users/me/blocked), as the follow lists are read.
CREATE INDEX blocks_recent_idx ON blocks (user_id, created_at DESC, target_id DESC);
