-- The database's identity: random, made once. Central replicas claim the shared consumer group
-- for it on the broker, so that a Central on another database cannot join and take events.
CREATE TABLE central_identity (
    id TEXT PRIMARY KEY
) WITHOUT ROWID;

INSERT INTO central_identity (id) SELECT lower(hex(randomblob(16)));
