//! PostgreSQL: the coordination operations (see the SQLite twin in `store/coordination.rs`).
