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

/// Link each event to its persons (`audit_persons`): `links` holds `(person key, seq)` pairs, two UNNEST statements
/// whatever their number; a person key not met yet gets a `persons` row without an ID number first.
async fn link_persons(
    conn: &mut PgConnection,
    links: &[([u8; 32], i64)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if links.is_empty() {
        return Ok(());
    }
    let keys: Vec<Vec<u8>> = links.iter().map(|(k, _)| k.to_vec()).collect();
    let seqs: Vec<i64> = links.iter().map(|(_, s)| *s).collect();
    sqlx::query(
        "INSERT INTO persons (person_key, created_at) SELECT DISTINCT k, $2 FROM UNNEST($1::bytea[]) AS t(k) \
         WHERE NOT EXISTS (SELECT 1 FROM persons p WHERE p.person_key = t.k) ON CONFLICT DO NOTHING",
    )
    .bind(&keys)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO audit_persons (person_id, seq) SELECT p.person_id, t.s FROM UNNEST($1::bytea[], $2::bigint[]) \
         AS t(k, s) JOIN persons p ON p.person_key = t.k ON CONFLICT DO NOTHING",
    )
    .bind(keys)
    .bind(seqs)
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
