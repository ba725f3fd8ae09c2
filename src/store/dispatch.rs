//! [`Store`]: the storage contract ([`Storage`]) of the backend the database URL names, as the hub holds it.

use std::sync::Arc;

use super::contract::Storage;
use super::{PgStore, SqliteStore, StoreError};

/// The hub's store: the SQLite or the PostgreSQL backend behind the storage contract ([`super::contract`]). Cheap to
/// clone (one shared backend). Every operation of the contract is called on it directly (it dereferences to
/// `dyn Storage`; bring the area traits into scope with `use crate::store::contract::*`).
#[derive(Clone)]
pub struct Store(Arc<dyn Storage>);

impl std::ops::Deref for Store {
    type Target = dyn Storage;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl Store {
    /// Open the database named by `url`: `sqlite://PATH` (created if missing; an in-memory database is refused) or
    /// `postgres://…` / `postgresql://…` (the database must exist). Migrations are not applied here:
    /// see [`super::contract::StoreAdmin::migrate`].
    ///
    /// # Errors
    /// [`StoreError::Db`] when the URL is malformed or the database cannot be opened.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store(Arc::new(PgStore::open(url).await?)))
        } else {
            Ok(Store(Arc::new(SqliteStore::open(url).await?)))
        }
    }

    /// The SQLite read pool, for tests that inspect or tamper with rows; `None` on PostgreSQL.
    pub fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        self.0.as_any().downcast_ref::<SqliteStore>().map(SqliteStore::pool)
    }

    /// The PostgreSQL pool, for tests that inspect or tamper with rows; `None` on SQLite.
    pub fn pg_pool(&self) -> Option<&sqlx::PgPool> {
        self.0.as_any().downcast_ref::<PgStore>().map(PgStore::pool)
    }
}
