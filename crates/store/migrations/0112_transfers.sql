-- Transfers this store took part in (issue 17): an `OUT` row when it shipped units, an `IN` row
-- when units reached it (from another store, or back from a cancelled transfer). Each is written
-- in the transaction that moved the units, so each side moves them once.
CREATE TABLE transfers (
    transfer_id TEXT    NOT NULL,
    direction   TEXT    NOT NULL CHECK (direction IN ('OUT', 'IN')),
    product_id  TEXT    NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity >= 1),
    peer_store  TEXT    NOT NULL, -- the other store (the sender itself for a return)
    state       TEXT    NOT NULL CHECK (state IN ('SHIPPED', 'AWAITING', 'RECEIVED')),
    at          INTEGER NOT NULL, -- unix milliseconds
    received_at INTEGER,
    PRIMARY KEY (transfer_id, direction)
) WITHOUT ROWID;
