-- Audit events of calls through a TLCP gateway (issue 20 item 6, SECURITY.md "A TLCP gateway in front of the hub"):
-- `via` is the pinned gateway a call came through (its SPIFFE ID, or `sha256:<hex>` of its certificate), "" for a
-- peer connected directly. The event's hash covers it when it is not empty (`doudi-audit-v3`, src/domain/audit.rs);
-- every event stored before has "" and hashes as it did. A column with a constant default: no row is rewritten.
ALTER TABLE audit_events ADD COLUMN via TEXT NOT NULL DEFAULT '';
