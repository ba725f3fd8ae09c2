//! PostgreSQL: hub metadata and data-key rotation (SQLite twin: `store/keys.rs`).

use super::PgStore;

impl PgStore {
    /// A `hub_meta` value, `None` when absent or unreadable.
    pub async fn meta(&self, name: &str) -> Option<Vec<u8>> {
        sqlx::query_scalar("SELECT value FROM hub_meta WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten()
    }
}
