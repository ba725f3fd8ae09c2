//! PostgreSQL: the medical operations (see the SQLite twin in `store/medical.rs`).
