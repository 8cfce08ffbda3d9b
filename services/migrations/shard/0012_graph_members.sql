-- The graph's own record of who exists and who is private (services/graph).
--
-- Every visibility decision needs both; the graph used to read them from
-- accounts' users rows. Now accounts tells the graph through the mesh-only
-- GraphService/SetAccountPrivacy: on registration (after the user row
-- commits, before the client hears of the account) and whenever is_private
-- changes (private: before accounts commits; public: after), so the graph
-- never holds an account as public that accounts holds as private for
-- longer than a failed call the client is told of and retries. A user the
-- graph does not know reads as not found, as a missing users row did.
CREATE TABLE members (
    user_id bigint PRIMARY KEY,
    is_private boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One-off data migration, run once when this file is applied: the users that
-- exist already. The graph's code never reads users; from here on accounts
-- keeps members current through the RPC.
INSERT INTO members (user_id, is_private) SELECT id, is_private FROM users;
