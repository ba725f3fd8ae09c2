//! PostgreSQL: appending to, reading and verifying the audit log (security.md), written once for both backends in
//! `store/sql/audit.rs`; the link of an event to its persons is PostgreSQL's own (UNNEST).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::Row as _;

use super::value;
use crate::store::rows::*;
use crate::store::{PgStore, StoreError};

/// The driver the shared SQL runs on.
type Db = sqlx::Postgres;

audit_log!(PgStore);

audit_append!();

/// Link event `seq` to its persons (`audit_persons`), one statement each; a person key not met yet gets a `persons`
/// row without an ID number first.
async fn link_persons(
    conn: &mut PgConnection,
    keys: &[[u8; 32]],
    seq: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let persons: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    sqlx::query(
        "INSERT INTO persons (person_key, created_at) SELECT k, $2 FROM UNNEST($1::bytea[]) AS t(k) \
         WHERE NOT EXISTS (SELECT 1 FROM persons p WHERE p.person_key = t.k) ON CONFLICT DO NOTHING",
    )
    .bind(&persons)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO audit_persons (person_id, seq) SELECT person_id, $2 FROM persons \
         WHERE person_key = ANY($1) ON CONFLICT DO NOTHING",
    )
    .bind(persons)
    .bind(seq)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Link event `seq` to persons whose `person_id`s are known (sorted, distinct), in one UNNEST statement.
async fn link_person_ids(conn: &mut PgConnection, ids: &[i64], seq: i64) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO audit_persons (person_id, seq) SELECT id, $2 FROM UNNEST($1::bigint[]) AS t(id) \
         ON CONFLICT DO NOTHING",
    )
    .bind(ids)
    .bind(seq)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
