-- Item states (issue 16): `quantity` stays what a sale can take (available); `reserved` is what
-- open reservations hold; on hand is their sum. Applied by version with the quantity.
ALTER TABLE items ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0);

-- The reserved units of the item a purchase answer shows.
ALTER TABLE purchases ADD COLUMN item_reserved INTEGER;

-- Reservations: recorded PENDING with the command to the store in one transaction; the store's
-- reply makes them HELD (until `expires_at`, the store's clock) or REJECTED; a held one ends once
-- as COMMITTED, RELEASED or EXPIRED.
CREATE TABLE reservations (
    reservation_id  TEXT    PRIMARY KEY,
    store_id        TEXT    NOT NULL,
    product_id      TEXT    NOT NULL,
    quantity        INTEGER NOT NULL CHECK (quantity >= 1),
    ttl_seconds     INTEGER NOT NULL CHECK (ttl_seconds >= 1),
    status          TEXT    NOT NULL CHECK (status IN ('PENDING', 'HELD', 'REJECTED',
                                                       'COMMITTED', 'RELEASED', 'EXPIRED')),
    reason          TEXT,
    expires_at      INTEGER,
    idempotency_key TEXT    UNIQUE,
    fingerprint     TEXT    NOT NULL,
    correlation_id  TEXT,
    created_at      INTEGER NOT NULL,
    deadline        INTEGER NOT NULL,
    resolved_at     INTEGER,
    ended_at        INTEGER
) WITHOUT ROWID;

CREATE INDEX reservations_by_store ON reservations (store_id, status);

-- Commits and releases of reservations: each a store-decided request of its own.
CREATE TABLE reservation_actions (
    action_id       TEXT    PRIMARY KEY,
    reservation_id  TEXT    NOT NULL REFERENCES reservations (reservation_id),
    action          TEXT    NOT NULL CHECK (action IN ('COMMIT', 'RELEASE')),
    status          TEXT    NOT NULL CHECK (status IN ('PENDING', 'DONE', 'REJECTED')),
    reason          TEXT,
    ended_as        TEXT,
    idempotency_key TEXT    UNIQUE,
    fingerprint     TEXT    NOT NULL,
    correlation_id  TEXT,
    created_at      INTEGER NOT NULL,
    deadline        INTEGER NOT NULL,
    resolved_at     INTEGER
) WITHOUT ROWID;

CREATE INDEX reservation_actions_by_reservation ON reservation_actions (reservation_id);
