-- Account deletion (DELETE /v1/users/me): the deleted account's username stays claimed, by
-- nobody (user_id NULL), until free_at (PICTOR_USERNAME_GRACE_DAYS later); a registration of
-- that name after free_at takes it over.
ALTER TABLE usernames ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE usernames ADD COLUMN free_at timestamptz;
