-- Every store-decided request this store has decided, of any kind (today remote purchases), so
-- that a command delivered twice (or two commands for one request) is decided once, and the
-- outcome can be told again. Replaces `remote_purchases`, whose rows it keeps.
CREATE TABLE decisions (
    request_id TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL, -- e.g. REMOTE_PURCHASE
    product_id TEXT    NOT NULL,
    quantity   INTEGER NOT NULL,
    outcome    TEXT    NOT NULL, -- CONFIRMED, or the rejection reason
    decided_at INTEGER NOT NULL  -- unix milliseconds
) WITHOUT ROWID;

INSERT INTO decisions (request_id, kind, product_id, quantity, outcome, decided_at)
SELECT purchase_id, 'REMOTE_PURCHASE', product_id, quantity, outcome, decided_at
FROM remote_purchases;

DROP TABLE remote_purchases;
