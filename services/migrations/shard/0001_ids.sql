-- Instagram-style 64-bit ids, the PL/pgSQL twin of hotpath.ids:
-- 41 bits of milliseconds since 2026-01-01T00:00:00Z, 13 bits of logical
-- shard, 10 bits of a per-schema sequence. Used for rows created in SQL
-- (data loading); services generate ids with hotpath's generator.
CREATE SEQUENCE id_seq;

CREATE FUNCTION next_id(shard integer) RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    epoch_ms constant bigint := 1767225600000;
    now_ms bigint;
    seq bigint;
BEGIN
    IF shard < 0 OR shard > 8191 THEN
        RAISE EXCEPTION 'logical shard % is outside 0..8191', shard;
    END IF;
    seq := nextval('id_seq') % 1024;
    now_ms := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    -- The top bit of the 41 is int64's sign bit: stop in 2060 rather than go negative.
    IF now_ms < epoch_ms OR now_ms - epoch_ms >= (1::bigint << 40) THEN
        RAISE EXCEPTION 'the clock (% ms) is outside the id layout''s range', now_ms;
    END IF;
    RETURN ((now_ms - epoch_ms) << 23) | (shard::bigint << 10) | seq;
END;
$$;
