-- PostgreSQL translation of ../migrations/0131_pending_requests.sql (same version, same index).

-- Self-healing (DESIGN §9): Central re-sends the command of every purchase still pending after a
-- while; this index finds them without reading the resolved ones.
CREATE INDEX purchases_pending ON purchases (created_at) WHERE status = 'PENDING';
