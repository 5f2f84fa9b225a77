-- The transactional outbox: a service appends a row in the same transaction as the change it
-- describes; the relay publishes unpublished rows in `seq` order and then stamps `published_at`.
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    stream       TEXT    NOT NULL,
    event_id     TEXT    NOT NULL UNIQUE,
    event_type   TEXT    NOT NULL,
    data         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL, -- unix milliseconds
    published_at INTEGER           -- unix milliseconds; NULL until Redis accepted the entry
);

-- Only unpublished rows are ever scanned in order; keep that index small.
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- The inbox: the id of every event whose effect was committed, written in the effect's own
-- transaction, so a redelivered event is recognised and skipped.
CREATE TABLE processed_events (
    event_id     TEXT    PRIMARY KEY,
    processed_at INTEGER NOT NULL -- unix milliseconds
) WITHOUT ROWID;

CREATE INDEX processed_events_by_age ON processed_events (processed_at);
