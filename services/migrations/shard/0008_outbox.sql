-- The transactional outbox (services.common.outbox): domain events written in
-- the transaction of the change that causes them, in the shard where the
-- change happens; the relay moves them to the Redis streams and deletes them.

CREATE TABLE outbox (
    -- Relay order within the shard.
    seq bigserial PRIMARY KEY,
    -- The envelope's event_id, the same on every delivery.
    event_id text NOT NULL,
    -- The stream: events:<topic>.
    topic text NOT NULL,
    type text NOT NULL,
    -- A serialized pictor.events.v1.EventEnvelope.
    payload bytea NOT NULL,
    -- Wake the relays at commit (NOTIFY), or leave the event to their next
    -- sweep (PICTOR_RELAY_POLL_MS): see below.
    wake boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- At commit, wake the relays listening on this database; the payload names
-- the schema, so they drain just that one. (pg_notify folds identical
-- notifications of one transaction into one.)
--
-- NOTE: NOTIFY serializes the commits that send one (a database-wide lock
-- while the notification is queued): on the 2-core machine it halved the
-- rate of one-statement like writes. So the writers of the busiest events
-- (likes) set wake = false and rely on the sweep, and those whose latency
-- shows (a post reaching feeds, a follow its count) wake the relay.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pictor_outbox', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH ROW WHEN (NEW.wake) EXECUTE FUNCTION outbox_notify();
