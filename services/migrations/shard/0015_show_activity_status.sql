-- Accounts' profile setting: whether people who follow each other with the
-- user may see when they are active (GET /v1/users/{user_id}/presence and the
-- stream's presence events). On by default; PATCH /v1/users/me changes it.
ALTER TABLE users ADD COLUMN show_activity_status boolean NOT NULL DEFAULT true;
