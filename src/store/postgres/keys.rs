//! PostgreSQL: hub metadata and data-key rotation, written once for both backends in `store/sql/keys.rs` (which
//! documents the `hub_meta` rows); only the re-encryption's UPDATE is PostgreSQL's own (one UNNEST statement).

use sqlx::Row as _;

use crate::security::crypto::PersonKey;
use crate::store::rows::*;
use crate::store::{PgStore, StoreError, corrupt};

/// The driver the shared SQL runs on.
type Db = sqlx::Postgres;

/// Store re-encrypted ciphers at `generation` in one UNNEST statement (a row already at `generation` is left alone).
async fn rotate_rows(
    tx: &mut sqlx::Transaction<'static, Db>,
    rows: &[(PersonKey, Vec<u8>)],
    generation: i64,
) -> Result<u64, StoreError> {
    let keys: Vec<Vec<u8>> = rows.iter().map(|(k, _)| k.as_bytes().to_vec()).collect();
    let ciphers: Vec<Vec<u8>> = rows.iter().map(|(_, c)| c.clone()).collect();
    Ok(sqlx::query(
        "UPDATE persons SET id_cipher = r.c, key_version = $3 FROM UNNEST($1::bytea[], $2::bytea[]) AS r(k, c) \
         WHERE persons.person_key = r.k AND persons.key_version <> $3",
    )
    .bind(keys)
    .bind(ciphers)
    .bind(generation)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

key_rotation!(PgStore);
