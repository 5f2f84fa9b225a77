-- Test-only: the "effect" a test consumer applies, one row per applied event.
CREATE TABLE effects (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT    NOT NULL,
    store_id TEXT    NOT NULL,
    version  INTEGER NOT NULL
);
