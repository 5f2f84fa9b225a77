-- The ledger says who and why (issue 16): every movement records its reason, its reference (a
-- delivery note, a purchase, a reservation…) and its actor (the authenticated subject once auth
-- exists; until then the request's correlation id). It also learns the kinds of batch adjustments
-- and transfers (issue 17). SQLite cannot change a CHECK in place: the table is rebuilt.
CREATE TABLE movements_v3 (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id     TEXT    NOT NULL REFERENCES items (product_id),
    kind           TEXT    NOT NULL CHECK (kind IN ('created', 'set', 'local_sale', 'remote_sale',
                                                    'reserve', 'reserved_sale', 'release', 'expire',
                                                    'adjustment', 'transfer_out', 'transfer_in')),
    delta          INTEGER NOT NULL, -- change in available units
    quantity       INTEGER NOT NULL CHECK (quantity >= 0), -- available after
    reserved       INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0), -- reserved after
    version        INTEGER NOT NULL,
    at             INTEGER NOT NULL, -- unix milliseconds
    correlation_id TEXT,
    purchase_id    TEXT UNIQUE,
    reservation_id TEXT,
    reason         TEXT,
    reference      TEXT,
    actor          TEXT,
    transfer_id    TEXT
);

INSERT INTO movements_v3 (id, product_id, kind, delta, quantity, reserved, version, at,
                          correlation_id, purchase_id, reservation_id, actor)
SELECT id, product_id, kind, delta, quantity, reserved, version, at, correlation_id, purchase_id,
       reservation_id, correlation_id
FROM movements;

DROP TABLE movements;
ALTER TABLE movements_v3 RENAME TO movements;
CREATE INDEX movements_by_item ON movements (product_id, id);
-- A transfer leaves one shelf once and arrives at the other once.
CREATE UNIQUE INDEX movements_once_per_transfer ON movements (transfer_id, kind)
    WHERE transfer_id IS NOT NULL;
