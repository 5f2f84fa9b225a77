-- Every remote purchase this store has decided, so that a command delivered twice (or two
-- commands for one purchase) is decided once.
CREATE TABLE remote_purchases (
    purchase_id TEXT    PRIMARY KEY,
    product_id  TEXT    NOT NULL,
    quantity    INTEGER NOT NULL,
    outcome     TEXT    NOT NULL, -- CONFIRMED, or the rejection reason
    decided_at  INTEGER NOT NULL  -- unix milliseconds
) WITHOUT ROWID;
