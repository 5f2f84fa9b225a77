-- Which node wrote each outbox row, on a database several nodes share (Central replicas): each
-- relay publishes its own rows, which its single writer commits in `seq` order, so its cursor
-- (`seq > last published`) never skips a row another replica committed late with a lower `seq`.
-- The writer sets `stockmesh.origin` for its session (its consumer name); rows take it by default.
ALTER TABLE outbox ADD COLUMN origin TEXT COLLATE "C"
    DEFAULT current_setting('stockmesh.origin', true);

CREATE INDEX outbox_unpublished_by_origin ON outbox (origin, seq) WHERE published_at IS NULL;
