//! PostgreSQL: the audit operations (see the SQLite twin in `store/audit.rs`).
