-- PostgreSQL translation of ../migrations/0130_summary.sql (same version, same behaviour).
-- SQLite's trigger bodies become plpgsql functions, one per trigger; the backfill casts
-- SUM(version), which is NUMERIC on a BIGINT column in PostgreSQL.

-- Self-healing (DESIGN §9). Per store, the figures Central compares with what the store
-- advertises: how many of its items the view holds and the sum of their versions (the watermark
-- of what Central applied). Kept by triggers, so a comparison reads one row.
CREATE TABLE store_summary (
    store_id TEXT COLLATE "C" PRIMARY KEY,
    items    BIGINT NOT NULL,
    changes  BIGINT NOT NULL
);

INSERT INTO store_summary (store_id, items, changes)
SELECT store_id, COUNT(*), SUM(version)::BIGINT FROM items GROUP BY store_id;

-- `items` is both a table and a store_summary column: qualify the column in the upsert.
CREATE FUNCTION view_summary_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO store_summary (store_id, items, changes) VALUES (NEW.store_id, 1, NEW.version)
    ON CONFLICT (store_id) DO UPDATE
        SET items = store_summary.items + 1, changes = store_summary.changes + NEW.version;
    RETURN NULL;
END;
$$;

CREATE TRIGGER view_summary_insert AFTER INSERT ON items
    FOR EACH ROW EXECUTE FUNCTION view_summary_insert();

CREATE FUNCTION view_summary_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE store_summary SET changes = changes + NEW.version - OLD.version
    WHERE store_id = NEW.store_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER view_summary_update AFTER UPDATE OF version ON items
    FOR EACH ROW EXECUTE FUNCTION view_summary_update();

CREATE FUNCTION view_summary_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE store_summary SET items = items - 1, changes = changes - OLD.version
    WHERE store_id = OLD.store_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER view_summary_delete AFTER DELETE ON items
    FOR EACH ROW EXECUTE FUNCTION view_summary_delete();
