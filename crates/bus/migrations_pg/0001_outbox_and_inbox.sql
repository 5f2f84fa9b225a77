-- PostgreSQL translation of ../migrations/0001_outbox_and_inbox.sql (same version, same schema).
-- INTEGER becomes BIGINT (the Rust side decodes i64); every TEXT column sorts bytewise
-- (COLLATE "C") so ORDER BY and cursor comparisons agree with SQLite.

-- The transactional outbox: a service appends a row in the same transaction as the change it
-- describes; the relay publishes unpublished rows in `seq` order and then stamps `published_at`.
CREATE TABLE outbox (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream       TEXT COLLATE "C" NOT NULL,
    event_id     TEXT COLLATE "C" NOT NULL UNIQUE,
    event_type   TEXT COLLATE "C" NOT NULL,
    data         TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL, -- unix milliseconds
    published_at BIGINT           -- unix milliseconds; NULL until Redis accepted the entry
);

-- Only unpublished rows are ever scanned in order; keep that index small.
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- The inbox: the id of every event whose effect was committed, written in the effect's own
-- transaction, so a redelivered event is recognised and skipped.
CREATE TABLE processed_events (
    event_id     TEXT COLLATE "C" PRIMARY KEY,
    processed_at BIGINT NOT NULL -- unix milliseconds
);

CREATE INDEX processed_events_by_age ON processed_events (processed_at);
