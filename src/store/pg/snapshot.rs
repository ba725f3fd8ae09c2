//! PostgreSQL: the snapshot operations (see the SQLite twin in `store/snapshot.rs`).
