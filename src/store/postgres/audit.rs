//! PostgreSQL: appending to, reading and verifying the audit log (docs/spec/security.md), written once for both
//! backends in `store/sql/audit.rs`; the link of an event to its persons is PostgreSQL's own (UNNEST).

use chrono::{DateTime, Utc};
use sqlx::Row as _;
use sqlx::{PgConnection, Postgres, Transaction};

use super::value;
use crate::store::rows::*;
use crate::store::{PgStore, StoreError};

/// The driver the shared SQL runs on.
type Db = sqlx::Postgres;

audit_log!(PgStore);

audit_append!();

/// The next `n` log numbers, from the `audit_events_seq` sequence (lanes append at once without a lock; a rolled-back
/// append leaves a gap in `seq`, never in a lane).
async fn next_seqs(conn: &mut PgConnection, n: usize) -> Result<Vec<i64>, StoreError> {
    let mut seqs: Vec<i64> = sqlx::query_scalar("SELECT nextval('audit_events_seq') FROM generate_series(1, $1)")
        .bind(n as i64)
        .fetch_all(&mut *conn)
        .await?;
    seqs.sort_unstable();
    Ok(seqs)
}

/// How the chain check's two transactions open: one snapshot for the whole transaction, which the second imports
/// (`SET TRANSACTION SNAPSHOT`, its first statement).
const READ_ONE_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

impl PgStore {
    /// Keep a signed head (`AuditLog::keep_signed_head`): one row on a pooled connection, without the hub-wide lock
    /// (the table is in no chain and its rows are independent).
    pub(super) async fn insert_signed_head(
        &self,
        signed_at: DateTime<Utc>,
        heads: String,
        signature: Vec<u8>,
        signer_cert: String,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_signed_heads (signed_at, heads, signature, signer_cert) VALUES ($1, $2, $3, $4)",
        )
        .bind(signed_at)
        .bind(heads)
        .bind(signature)
        .bind(signer_cert)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Two read-only transactions on one snapshot for the chain check (`store/sql/audit.rs`): lanes commit in any
    /// order, so a bound on `seq` would not give both reads the same events; an exported snapshot does. The bound
    /// returned is `i64::MAX`.
    pub(super) async fn audit_reading(
        &self,
    ) -> Result<(Transaction<'static, Postgres>, Transaction<'static, Postgres>, i64), StoreError> {
        let mut a = self.begin(READ_ONE_SNAPSHOT).await?;
        let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()").fetch_one(&mut *a).await?;
        if !snapshot.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(crate::store::corrupt("pg_export_snapshot", "an unexpected snapshot id"));
        }
        let mut b = self.begin(READ_ONE_SNAPSHOT).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET TRANSACTION SNAPSHOT '{snapshot}'"))).execute(&mut *b).await?;
        Ok((a, b, i64::MAX))
    }
}

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
