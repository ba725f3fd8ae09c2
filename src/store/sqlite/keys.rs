//! SQLite: hub metadata and data-key rotation, written once for both backends in `store/sql/keys.rs` (which documents
//! the `hub_meta` rows); only the re-encryption's UPDATE is SQLite's own.

use sqlx::Row as _;

use super::corrupt;
use crate::security::crypto::PersonKey;
use crate::store::rows::*;
use crate::store::{SqliteStore, StoreError};

/// The driver the shared SQL runs on.
type Db = sqlx::Sqlite;

/// Store re-encrypted ciphers at `generation`, a row at a time (a row already at `generation` is left alone).
async fn rotate_rows(
    tx: &mut sqlx::Transaction<'static, Db>,
    rows: &[(PersonKey, Vec<u8>)],
    generation: i64,
) -> Result<u64, StoreError> {
    let mut n = 0;
    for (k, cipher) in rows {
        n += sqlx::query(
            "UPDATE persons SET id_cipher = $1, key_version = $2 WHERE person_key = $3 AND key_version <> $2",
        )
        .bind(cipher.clone())
        .bind(generation)
        .bind(k.as_bytes().to_vec())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(n)
}

key_rotation!(SqliteStore);
