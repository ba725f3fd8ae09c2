//! PostgreSQL: the bench operations (see the SQLite twin in `store/bench.rs`).
