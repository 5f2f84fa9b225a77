-- Which node wrote each outbox row, on a database several nodes share (Central replicas on
-- PostgreSQL): each relay publishes its own rows. One node per SQLite file: always NULL here.
ALTER TABLE outbox ADD COLUMN origin TEXT;
