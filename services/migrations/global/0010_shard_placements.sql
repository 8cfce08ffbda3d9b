-- Logical shards moved while the platform ran (services.mesh.shards): where each lives now.
-- A shard without a row lives where PICTOR_SHARD_MAP puts it. Every process reads this table
-- at start and every PICTOR_SHARD_MAP_POLL_MS (services.common.db), and routes by it.
-- NOTE: url carries the target's credentials, as PICTOR_SHARD_MAP does.
CREATE TABLE shard_placements (
    shard integer PRIMARY KEY CHECK (shard BETWEEN 0 AND 8191),
    url text NOT NULL,
    moved_at timestamptz NOT NULL DEFAULT now()
);
