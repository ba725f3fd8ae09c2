//! PostgreSQL: hub metadata and data-key rotation (SQLite twin: `store/sqlite/keys.rs`, which documents the `hub_meta` rows).

use async_trait::async_trait;
use sqlx::{PgConnection, Row};

use super::PgStore;
use crate::crypto::PersonKey;
use crate::store::contract::*;
use crate::store::corrupt;
use crate::store::{RotationStart, StoreError};

fn meta_i64(v: Option<Vec<u8>>) -> Option<i64> {
    v.and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.parse().ok())
}

async fn get(conn: &mut PgConnection, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(sqlx::query_scalar("SELECT value FROM hub_meta WHERE name = $1").bind(name).fetch_optional(conn).await?)
}

#[async_trait]
impl KeyRotation for PgStore {
    /// A `hub_meta` value, `None` when absent or unreadable.
    async fn meta(&self, name: &str) -> Option<Vec<u8>> {
        sqlx::query_scalar("SELECT value FROM hub_meta WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten()
    }
    /// Begin (or resume) a rotation from the key with `old_check` to the key with `new_check`, recording the lookup
    /// key wrapped under the new key.
    async fn rotation_begin(
        &self,
        old_check: &[u8; 32],
        new_check: &[u8; 32],
        lookup_wrapped_new: &[u8],
    ) -> Result<RotationStart, StoreError> {
        let mut tx = self.begin_write().await?;
        let current = get(&mut tx, "data_key_check").await?;
        if current.as_deref() == Some(new_check.as_slice()) {
            return Ok(RotationStart::AlreadyDone);
        }
        if current.as_deref() != Some(old_check.as_slice()) {
            return Ok(RotationStart::WrongOldKey);
        }
        if let Some(t) = get(&mut tx, "rotation_target_check").await?
            && t.as_slice() != new_check.as_slice()
        {
            return Ok(RotationStart::OtherRotationInProgress);
        }
        let generation = match meta_i64(get(&mut tx, "rotation_generation").await?) {
            Some(g) => g,
            None => meta_i64(get(&mut tx, "key_generation").await?).unwrap_or(1) + 1,
        };
        for (name, value) in [
            ("rotation_target_check", new_check.to_vec()),
            ("rotation_lookup_wrapped", lookup_wrapped_new.to_vec()),
            ("rotation_generation", generation.to_string().into_bytes()),
        ] {
            sqlx::query(
                "INSERT INTO hub_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = \
                 EXCLUDED.value",
            )
            .bind(name)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(RotationStart::Run { generation })
    }
    /// Up to `limit` persons not yet at `generation`: key and stored cipher.
    async fn persons_to_rotate(&self, generation: i64, limit: usize) -> Result<Vec<(PersonKey, Vec<u8>)>, StoreError> {
        let rows = sqlx::query("SELECT person_key, id_cipher FROM persons WHERE key_version <> $1 LIMIT $2")
            .bind(generation)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let k: Vec<u8> = r.try_get(0)?;
                Ok((PersonKey::from_slice(&k).ok_or_else(|| corrupt("persons", "person_key length"))?, r.try_get(1)?))
            })
            .collect()
    }
    /// Store re-encrypted ciphers at `generation`, in one transaction and one UNNEST statement (a row already at
    /// `generation` is left alone).
    async fn rotate_persons(&self, rows: &[(PersonKey, Vec<u8>)], generation: i64) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let keys: Vec<Vec<u8>> = rows.iter().map(|(k, _)| k.as_bytes().to_vec()).collect();
        let ciphers: Vec<Vec<u8>> = rows.iter().map(|(_, c)| c.clone()).collect();
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE persons SET id_cipher = r.c, key_version = $3 FROM UNNEST($1::bytea[], $2::bytea[]) AS r(k, c) \
             WHERE persons.person_key = r.k AND persons.key_version <> $3",
        )
        .bind(keys)
        .bind(ciphers)
        .bind(generation)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
    /// Switch the database to the new key: its check value, the wrapped lookup key and the generation.
    async fn rotation_finish(&self) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for (to, from) in [
            ("data_key_check", "rotation_target_check"),
            ("lookup_key_wrapped", "rotation_lookup_wrapped"),
            ("key_generation", "rotation_generation"),
        ] {
            sqlx::query(
                "INSERT INTO hub_meta (name, value) SELECT $1, value FROM hub_meta WHERE name = $2 \
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            )
            .bind(to)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM hub_meta WHERE name LIKE 'rotation\\_%'").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
