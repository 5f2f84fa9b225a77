-- Every store Central knows: discovered through the broker's registry or declared at start.
CREATE TABLE stores (
    store_id      TEXT    PRIMARY KEY,
    first_seen    INTEGER NOT NULL, -- unix milliseconds
    last_event_at INTEGER           -- unix milliseconds of the last event applied from it
) WITHOUT ROWID;

-- The global view: per (store, product) the highest version seen. Events carry absolute
-- quantities, so keeping the highest version makes applying them idempotent and
-- order-independent.
CREATE TABLE items (
    store_id    TEXT    NOT NULL REFERENCES stores (store_id),
    product_id  TEXT    NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity >= 0),
    version     INTEGER NOT NULL CHECK (version >= 1),
    updated_at  INTEGER NOT NULL, -- when the store changed it (unix ms)
    received_at INTEGER NOT NULL, -- when Central applied it (unix ms)
    PRIMARY KEY (store_id, product_id)
) WITHOUT ROWID;

CREATE INDEX items_by_product ON items (product_id, store_id);

-- Remote purchases: recorded PENDING with the command to the store in one transaction, then
-- resolved by the store's reply.
CREATE TABLE purchases (
    purchase_id     TEXT    PRIMARY KEY,
    store_id        TEXT    NOT NULL,
    product_id      TEXT    NOT NULL,
    quantity        INTEGER NOT NULL CHECK (quantity >= 1),
    status          TEXT    NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'REJECTED')),
    reason          TEXT,
    remaining       INTEGER,
    version         INTEGER,
    item_updated_at INTEGER,
    idempotency_key TEXT    UNIQUE,
    fingerprint     TEXT    NOT NULL,
    correlation_id  TEXT,
    created_at      INTEGER NOT NULL,
    deadline        INTEGER NOT NULL,
    resolved_at     INTEGER
) WITHOUT ROWID;
