-- Sessions: a refresh-token family is one signed-in device. What it was signed in with (the
-- client's User-Agent, cut to 200 characters) and an index to list a user's families.
ALTER TABLE refresh_tokens ADD COLUMN user_agent text NOT NULL DEFAULT '';
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
