-- Self-healing (DESIGN §9): the reply each decision sent, so that when Central asks again (its
-- command or the reply was lost) the store tells the same decision again instead of staying
-- silent. NULL for decisions made before this migration.
ALTER TABLE decisions ADD COLUMN reply TEXT;
