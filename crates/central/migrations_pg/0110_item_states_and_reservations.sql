-- PostgreSQL translation of ../migrations/0110_item_states_and_reservations.sql (same version,
-- same schema). INTEGER becomes BIGINT; every TEXT column sorts bytewise (COLLATE "C").

-- Item states (issue 16): `quantity` stays what a sale can take (available); `reserved` is what
-- open reservations hold; on hand is their sum. Applied by version with the quantity.
ALTER TABLE items ADD COLUMN reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0);

-- The reserved units of the item a purchase answer shows.
ALTER TABLE purchases ADD COLUMN item_reserved BIGINT;

-- Reservations: recorded PENDING with the command to the store in one transaction; the store's
-- reply makes them HELD (until `expires_at`, the store's clock) or REJECTED; a held one ends once
-- as COMMITTED, RELEASED or EXPIRED.
CREATE TABLE reservations (
    reservation_id  TEXT COLLATE "C" PRIMARY KEY,
    store_id        TEXT COLLATE "C" NOT NULL,
    product_id      TEXT COLLATE "C" NOT NULL,
    quantity        BIGINT NOT NULL CHECK (quantity >= 1),
    ttl_seconds     BIGINT NOT NULL CHECK (ttl_seconds >= 1),
    status          TEXT COLLATE "C" NOT NULL CHECK (status IN ('PENDING', 'HELD', 'REJECTED',
                                                       'COMMITTED', 'RELEASED', 'EXPIRED')),
    reason          TEXT COLLATE "C",
    expires_at      BIGINT,
    idempotency_key TEXT COLLATE "C" UNIQUE,
    fingerprint     TEXT COLLATE "C" NOT NULL,
    correlation_id  TEXT COLLATE "C",
    created_at      BIGINT NOT NULL,
    deadline        BIGINT NOT NULL,
    resolved_at     BIGINT,
    ended_at        BIGINT
);

CREATE INDEX reservations_by_store ON reservations (store_id, status);

-- Commits and releases of reservations: each a store-decided request of its own.
CREATE TABLE reservation_actions (
    action_id       TEXT COLLATE "C" PRIMARY KEY,
    reservation_id  TEXT COLLATE "C" NOT NULL REFERENCES reservations (reservation_id),
    action          TEXT COLLATE "C" NOT NULL CHECK (action IN ('COMMIT', 'RELEASE')),
    status          TEXT COLLATE "C" NOT NULL CHECK (status IN ('PENDING', 'DONE', 'REJECTED')),
    reason          TEXT COLLATE "C",
    ended_as        TEXT COLLATE "C",
    idempotency_key TEXT COLLATE "C" UNIQUE,
    fingerprint     TEXT COLLATE "C" NOT NULL,
    correlation_id  TEXT COLLATE "C",
    created_at      BIGINT NOT NULL,
    deadline        BIGINT NOT NULL,
    resolved_at     BIGINT
);

CREATE INDEX reservation_actions_by_reservation ON reservation_actions (reservation_id);
