-- Moderation's effects on comments, stories and messages, each applied by its owner from
-- moderation's events: engagement (comments), stories, messaging. A hidden row is shown to its
-- author alone.
ALTER TABLE comments ADD COLUMN hidden_at timestamptz;
ALTER TABLE stories ADD COLUMN hidden_at timestamptz;
ALTER TABLE messages ADD COLUMN hidden_at timestamptz;
