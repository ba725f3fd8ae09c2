-- Refusals on record (issue 20 item 2, docs/refusals.md): refusals (PERMISSION_DENIED, UNAUTHENTICATED, quota
-- refusals, client certificates refused at the TLS handshake) are ordinary audit events whose outcome starts with
-- 'REFUSED ' ("REFUSED PERMISSION_DENIED count=17"). They are few beside the reads and pushes, so ListAccessEvents
-- filtered to refusals (newest first) would otherwise scan the whole log: this partial index holds only them. Its
-- predicate is written exactly as the listing's condition (`store::OutcomeFilter::sql`) so that the planner uses it.
-- An index only: no row, column or hash changes. The same migration as migrations/postgres/0013_refusals.sql.
CREATE INDEX audit_events_refusals ON audit_events (seq) WHERE substr(outcome, 1, 8) = 'REFUSED ';
