-- Self-healing (DESIGN §9). Per store, the figures Central compares with what the store
-- advertises: how many of its items the view holds and the sum of their versions (the watermark
-- of what Central applied). Kept by triggers, so a comparison reads one row.
CREATE TABLE store_summary (
    store_id TEXT    PRIMARY KEY,
    items    INTEGER NOT NULL,
    changes  INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO store_summary (store_id, items, changes)
SELECT store_id, COUNT(*), SUM(version) FROM items GROUP BY store_id;

CREATE TRIGGER view_summary_insert AFTER INSERT ON items
BEGIN
    INSERT INTO store_summary (store_id, items, changes) VALUES (NEW.store_id, 1, NEW.version)
    ON CONFLICT (store_id) DO UPDATE SET items = items + 1, changes = changes + NEW.version;
END;

CREATE TRIGGER view_summary_update AFTER UPDATE OF version ON items
BEGIN
    UPDATE store_summary SET changes = changes + NEW.version - OLD.version
    WHERE store_id = NEW.store_id;
END;

CREATE TRIGGER view_summary_delete AFTER DELETE ON items
BEGIN
    UPDATE store_summary SET items = items - 1, changes = changes - OLD.version
    WHERE store_id = OLD.store_id;
END;
