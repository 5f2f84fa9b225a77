-- A store's own stock: one row per product. The CHECK is the last line of defence against
-- overselling; the purchase statement itself never takes more than is there.
CREATE TABLE items (
    product_id TEXT    PRIMARY KEY,
    quantity   INTEGER NOT NULL CHECK (quantity >= 0),
    version    INTEGER NOT NULL CHECK (version >= 1),
    updated_at INTEGER NOT NULL -- unix milliseconds
) WITHOUT ROWID;

-- The ledger: every change to an item, written in the change's transaction.
CREATE TABLE movements (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id     TEXT    NOT NULL REFERENCES items (product_id),
    kind           TEXT    NOT NULL CHECK (kind IN ('created', 'set', 'local_sale', 'remote_sale')),
    delta          INTEGER NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity >= 0),
    version        INTEGER NOT NULL,
    at             INTEGER NOT NULL, -- unix milliseconds
    correlation_id TEXT,
    purchase_id    TEXT UNIQUE
);

CREATE INDEX movements_by_item ON movements (product_id, id);
