-- Item states (issue 16): `quantity` stays the units a sale can take (available); `reserved`
-- counts the units held by open reservations; on hand is their sum. A sale's guarded decrement
-- reads only `quantity`, so it can never take a reserved unit.
ALTER TABLE items ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0);

-- Reservations this store holds or held. A row is OPEN until exactly one end: COMMITTED,
-- RELEASED or EXPIRED (by the store's own clock).
CREATE TABLE reservations (
    reservation_id TEXT    PRIMARY KEY,
    product_id     TEXT    NOT NULL REFERENCES items (product_id),
    quantity       INTEGER NOT NULL CHECK (quantity >= 1),
    state          TEXT    NOT NULL CHECK (state IN ('OPEN', 'COMMITTED', 'RELEASED', 'EXPIRED')),
    created_at     INTEGER NOT NULL, -- unix milliseconds
    expires_at     INTEGER NOT NULL, -- unix milliseconds, by this store's clock
    ended_at       INTEGER
) WITHOUT ROWID;

CREATE INDEX reservations_open_by_expiry ON reservations (expires_at) WHERE state = 'OPEN';

-- The ledger learns the reservation kinds and the reserved count after each movement. SQLite
-- cannot change a CHECK in place: the table is rebuilt with its rows.
CREATE TABLE movements_v2 (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id     TEXT    NOT NULL REFERENCES items (product_id),
    kind           TEXT    NOT NULL CHECK (kind IN ('created', 'set', 'local_sale', 'remote_sale',
                                                    'reserve', 'reserved_sale', 'release', 'expire')),
    delta          INTEGER NOT NULL, -- change in available units
    quantity       INTEGER NOT NULL CHECK (quantity >= 0), -- available after
    reserved       INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0), -- reserved after
    version        INTEGER NOT NULL,
    at             INTEGER NOT NULL, -- unix milliseconds
    correlation_id TEXT,
    purchase_id    TEXT UNIQUE,
    reservation_id TEXT
);

INSERT INTO movements_v2 (id, product_id, kind, delta, quantity, version, at, correlation_id,
                          purchase_id)
SELECT id, product_id, kind, delta, quantity, version, at, correlation_id, purchase_id
FROM movements;

DROP TABLE movements;
ALTER TABLE movements_v2 RENAME TO movements;
CREATE INDEX movements_by_item ON movements (product_id, id);
