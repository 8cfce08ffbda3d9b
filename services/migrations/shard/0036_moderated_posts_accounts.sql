-- Moderation's effects, each applied by the owner of the table from moderation's events
-- (services/moderation/events.py): posts' consumer hides a post; accounts' suspends an account.

-- A hidden post is left out of every read but its author's and moderators' (services.posts).
ALTER TABLE posts ADD COLUMN hidden_at timestamptz;

-- A suspended account cannot sign in or refresh a token; others see it as not found (services.accounts).
ALTER TABLE users ADD COLUMN suspended_at timestamptz;
