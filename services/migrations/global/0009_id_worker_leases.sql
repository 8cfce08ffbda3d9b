-- Worker numbers for ids (services.common.ids): each process that mints ids leases one of
-- 1..63 (hotpath.ids' 6 worker bits; 0 stays for tools that load data offline), so replicas
-- never issue one id. A lease lasts until expires_at (the database's clock) unless renewed;
-- token grows with every new holder (fencing: a renewal names the token it holds, so a holder
-- that lost its number cannot renew it). issued_until_ms is the latest Unix ms an id of the
-- holder may carry: the next holder issues nothing before it.
CREATE TABLE id_worker_leases (
    worker smallint PRIMARY KEY CHECK (worker BETWEEN 1 AND 63),
    holder text NOT NULL DEFAULT '',
    token bigint NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL DEFAULT '-infinity',
    issued_until_ms bigint NOT NULL DEFAULT 0
);
INSERT INTO id_worker_leases (worker) SELECT generate_series(1, 63);
