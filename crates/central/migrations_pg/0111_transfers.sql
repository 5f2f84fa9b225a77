-- PostgreSQL translation of ../migrations/0111_transfers.sql (same version, same schema).
-- INTEGER becomes BIGINT (`confirm` stays a 0/1 BIGINT, not a BOOLEAN, so the same i64 binds
-- work on both engines); every TEXT column sorts bytewise (COLLATE "C").

-- Transfers between stores (issue 17). Recorded REQUESTED with the shipment command to the
-- sending store in one transaction; its reply makes them IN_TRANSIT (and sends the receipt
-- command to the receiving store in the reply's transaction) or REJECTED; the receiving store's
-- reply makes them RECEIVED. A REQUESTED transfer may be CANCELLED at Central; if its shipment
-- crossed the cancel, the units are sent back to the sender (`shipped_at` set, then
-- `returned_at`).
CREATE TABLE transfers (
    transfer_id     TEXT COLLATE "C" PRIMARY KEY,
    from_store      TEXT COLLATE "C" NOT NULL,
    to_store        TEXT COLLATE "C" NOT NULL,
    product_id      TEXT COLLATE "C" NOT NULL,
    quantity        BIGINT NOT NULL CHECK (quantity >= 1),
    confirm         BIGINT NOT NULL CHECK (confirm IN (0, 1)),
    status          TEXT COLLATE "C" NOT NULL CHECK (status IN ('REQUESTED', 'IN_TRANSIT', 'RECEIVED',
                                                       'REJECTED', 'CANCELLED')),
    reason          TEXT COLLATE "C",
    idempotency_key TEXT COLLATE "C" UNIQUE,
    fingerprint     TEXT COLLATE "C" NOT NULL,
    correlation_id  TEXT COLLATE "C",
    created_at      BIGINT NOT NULL,
    deadline        BIGINT NOT NULL,
    shipped_at      BIGINT,
    arrived_at      BIGINT,
    received_at     BIGINT,
    rejected_at     BIGINT,
    cancelled_at    BIGINT,
    returned_at     BIGINT,
    CHECK (from_store <> to_store)
);

CREATE INDEX transfers_from ON transfers (from_store, created_at);
CREATE INDEX transfers_to ON transfers (to_store, created_at);
CREATE INDEX transfers_in_transit ON transfers (product_id) WHERE shipped_at IS NOT NULL
    AND received_at IS NULL AND returned_at IS NULL;
