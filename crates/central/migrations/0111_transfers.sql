-- Transfers between stores (issue 17). Recorded REQUESTED with the shipment command to the
-- sending store in one transaction; its reply makes them IN_TRANSIT (and sends the receipt
-- command to the receiving store in the reply's transaction) or REJECTED; the receiving store's
-- reply makes them RECEIVED. A REQUESTED transfer may be CANCELLED at Central; if its shipment
-- crossed the cancel, the units are sent back to the sender (`shipped_at` set, then
-- `returned_at`).
CREATE TABLE transfers (
    transfer_id     TEXT    PRIMARY KEY,
    from_store      TEXT    NOT NULL,
    to_store        TEXT    NOT NULL,
    product_id      TEXT    NOT NULL,
    quantity        INTEGER NOT NULL CHECK (quantity >= 1),
    confirm         INTEGER NOT NULL CHECK (confirm IN (0, 1)),
    status          TEXT    NOT NULL CHECK (status IN ('REQUESTED', 'IN_TRANSIT', 'RECEIVED',
                                                       'REJECTED', 'CANCELLED')),
    reason          TEXT,
    idempotency_key TEXT    UNIQUE,
    fingerprint     TEXT    NOT NULL,
    correlation_id  TEXT,
    created_at      INTEGER NOT NULL,
    deadline        INTEGER NOT NULL,
    shipped_at      INTEGER,
    arrived_at      INTEGER,
    received_at     INTEGER,
    rejected_at     INTEGER,
    cancelled_at    INTEGER,
    returned_at     INTEGER,
    CHECK (from_store <> to_store)
) WITHOUT ROWID;

CREATE INDEX transfers_from ON transfers (from_store, created_at);
CREATE INDEX transfers_to ON transfers (to_store, created_at);
CREATE INDEX transfers_in_transit ON transfers (product_id) WHERE shipped_at IS NOT NULL
    AND received_at IS NULL AND returned_at IS NULL;
