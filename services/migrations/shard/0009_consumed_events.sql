-- Events a consumer has applied, for effects that are not idempotent by
-- themselves (adding to a count): the consumer records the event id in the
-- transaction of its effect, in the shard of the row it changes, and a
-- delivery that finds the id already there changes nothing. `entity_id` is
-- the row changed (one event may change a row in each of two shards, or two
-- rows of one shard). Rows older than a week are pruned: a redelivery comes
-- within minutes.
CREATE TABLE consumed_events (
    consumer text NOT NULL,
    event_id text NOT NULL,
    entity_id bigint NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id, entity_id)
);
CREATE INDEX consumed_events_applied_idx ON consumed_events (applied_at);
