-- Suggestions for someone with no follows to go by: the most followed accounts of each shard.
CREATE INDEX search_users_most_followed_idx ON search_users (follower_count DESC, user_id)
    WHERE NOT deleted AND follower_count > 0;
