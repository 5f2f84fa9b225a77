-- PostgreSQL translation of ../migrations/0140_identity.sql.
-- The database's identity: random, made once. Central replicas claim the shared consumer group
-- for it on the broker, so that a Central on another database cannot join and take events.
CREATE TABLE central_identity (
    id TEXT COLLATE "C" PRIMARY KEY
);

INSERT INTO central_identity (id) SELECT md5(random()::text || clock_timestamp()::text);
