-- Self-healing (DESIGN §9). The figures a store advertises with each heartbeat, kept by triggers
-- so that reading them costs one row whatever the inventory's size: how many items, and the sum
-- of their versions (every change bumps one version by one, so the sum counts the changes: the
-- store's watermark).
CREATE TABLE store_summary (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    items   INTEGER NOT NULL,
    changes INTEGER NOT NULL
);

INSERT INTO store_summary (id, items, changes)
SELECT 1, COUNT(*), COALESCE(SUM(version), 0) FROM items;

CREATE TRIGGER items_summary_insert AFTER INSERT ON items
BEGIN
    UPDATE store_summary SET items = items + 1, changes = changes + NEW.version WHERE id = 1;
END;

CREATE TRIGGER items_summary_update AFTER UPDATE OF version ON items
BEGIN
    UPDATE store_summary SET changes = changes + NEW.version - OLD.version WHERE id = 1;
END;

CREATE TRIGGER items_summary_delete AFTER DELETE ON items
BEGIN
    UPDATE store_summary SET items = items - 1, changes = changes - OLD.version WHERE id = 1;
END;

-- A replay sends the items changed after an instant, in pages, in this order.
CREATE INDEX items_by_change ON items (updated_at, product_id);

-- The one resynchronisation in progress, if any: what Central asked for and how far the pages
-- have gone. A new request that the running one covers is dropped, so repair work happens once.
CREATE TABLE resync (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    changed_after  INTEGER,          -- unix ms; NULL: every item
    cursor_at      INTEGER,          -- updated_at of the last item sent; NULL: none yet
    cursor_product TEXT,             -- product of the last item sent
    requested_at   INTEGER NOT NULL, -- unix ms
    sent           INTEGER NOT NULL DEFAULT 0,
    correlation_id TEXT
);
