-- PostgreSQL translation of ../migrations/0100_view.sql (same version, same schema).
-- INTEGER becomes BIGINT (the Rust side decodes i64); every TEXT column sorts bytewise
-- (COLLATE "C") so ORDER BY and cursor comparisons (`>`) agree with SQLite.

-- Every store Central knows: discovered through the broker's registry or declared at start.
CREATE TABLE stores (
    store_id      TEXT COLLATE "C" PRIMARY KEY,
    first_seen    BIGINT NOT NULL, -- unix milliseconds
    last_event_at BIGINT           -- unix milliseconds of the last event applied from it
);

-- The global view: per (store, product) the highest version seen. Events carry absolute
-- quantities, so keeping the highest version makes applying them idempotent and
-- order-independent.
CREATE TABLE items (
    store_id    TEXT COLLATE "C" NOT NULL REFERENCES stores (store_id),
    product_id  TEXT COLLATE "C" NOT NULL,
    quantity    BIGINT NOT NULL CHECK (quantity >= 0),
    version     BIGINT NOT NULL CHECK (version >= 1),
    updated_at  BIGINT NOT NULL, -- when the store changed it (unix ms)
    received_at BIGINT NOT NULL, -- when Central applied it (unix ms)
    PRIMARY KEY (store_id, product_id)
);

CREATE INDEX items_by_product ON items (product_id, store_id);

-- Remote purchases: recorded PENDING with the command to the store in one transaction, then
-- resolved by the store's reply.
CREATE TABLE purchases (
    purchase_id     TEXT COLLATE "C" PRIMARY KEY,
    store_id        TEXT COLLATE "C" NOT NULL,
    product_id      TEXT COLLATE "C" NOT NULL,
    quantity        BIGINT NOT NULL CHECK (quantity >= 1),
    status          TEXT COLLATE "C" NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'REJECTED')),
    reason          TEXT COLLATE "C",
    remaining       BIGINT,
    version         BIGINT,
    item_updated_at BIGINT,
    idempotency_key TEXT COLLATE "C" UNIQUE,
    fingerprint     TEXT COLLATE "C" NOT NULL,
    correlation_id  TEXT COLLATE "C",
    created_at      BIGINT NOT NULL,
    deadline        BIGINT NOT NULL,
    resolved_at     BIGINT
);
