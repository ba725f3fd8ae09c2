//! Data-key rotation (security.md: "Rotating the data key is a documented command"): the stored ID numbers are
//! re-encrypted under a new data key in resumable batches; the person keys never change (the original lookup key
//! is kept, wrapped under the current data key, in `hub_meta`).
//!
//! `hub_meta` rows: `data_key_check` (the current key's check value), `lookup_key_wrapped` (absent until the first
//! rotation: the lookup key is then the one derived from the data key), `key_generation` (1 until rotated), and
//! while a rotation runs `rotation_target_check`, `rotation_lookup_wrapped`, `rotation_generation`.

use async_trait::async_trait;
use sqlx::Row;

use super::corrupt;
use crate::crypto::PersonKey;
use crate::store::contract::*;
use crate::store::rows::*;
use crate::store::{SqliteStore, StoreError};

fn meta_i64(v: Option<Vec<u8>>) -> Option<i64> {
    v.and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.parse().ok())
}

#[async_trait]
impl KeyRotation for SqliteStore {
    /// A `hub_meta` value (`None` when absent, or when the table does not exist yet).
    async fn meta(&self, name: &str) -> Option<Vec<u8>> {
        sqlx::query("SELECT value FROM hub_meta WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten()
            .and_then(|r| r.try_get::<Vec<u8>, _>(0).ok())
    }
    /// Begin (or resume) a rotation from the key with `old_check` to the key with `new_check`, recording the lookup
    /// key wrapped under the new key.
    async fn rotation_begin(
        &self,
        old_check: &[u8; 32],
        new_check: &[u8; 32],
        lookup_wrapped_new: &[u8],
    ) -> Result<RotationStart, StoreError> {
        let _w = self.writer.lock().await;
        let mut tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        let get = |name: &'static str| sqlx::query("SELECT value FROM hub_meta WHERE name = ?").bind(name);
        let current: Option<Vec<u8>> = get("data_key_check").fetch_optional(&mut *tx).await?.map(|r| r.get(0));
        if current.as_deref() == Some(new_check.as_slice()) {
            return Ok(RotationStart::AlreadyDone);
        }
        if current.as_deref() != Some(old_check.as_slice()) {
            return Ok(RotationStart::WrongOldKey);
        }
        let target: Option<Vec<u8>> = get("rotation_target_check").fetch_optional(&mut *tx).await?.map(|r| r.get(0));
        if let Some(t) = &target
            && t.as_slice() != new_check.as_slice()
        {
            return Ok(RotationStart::OtherRotationInProgress);
        }
        let generation = match meta_i64(get("rotation_generation").fetch_optional(&mut *tx).await?.map(|r| r.get(0))) {
            Some(g) => g,
            None => meta_i64(get("key_generation").fetch_optional(&mut *tx).await?.map(|r| r.get(0))).unwrap_or(1) + 1,
        };
        for (name, value) in [
            ("rotation_target_check", new_check.to_vec()),
            ("rotation_lookup_wrapped", lookup_wrapped_new.to_vec()),
            ("rotation_generation", generation.to_string().into_bytes()),
        ] {
            sqlx::query("INSERT OR REPLACE INTO hub_meta (name, value) VALUES (?, ?)")
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
        let rows = sqlx::query("SELECT person_key, id_cipher FROM persons WHERE key_version != ? LIMIT ?")
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
    /// Store re-encrypted ciphers at `generation`, in one transaction (a row already at `generation` is left alone).
    async fn rotate_persons(&self, rows: &[(PersonKey, Vec<u8>)], generation: i64) -> Result<u64, StoreError> {
        let _w = self.writer.lock().await;
        let mut tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut n = 0;
        for (k, cipher) in rows {
            n += sqlx::query(
                "UPDATE persons SET id_cipher = ?, key_version = ? WHERE person_key = ? AND key_version != ?",
            )
            .bind(cipher.clone())
            .bind(generation)
            .bind(k.as_bytes().to_vec())
            .bind(generation)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }
    /// Switch the database to the new key: its check value, the wrapped lookup key and the generation.
    async fn rotation_finish(&self) -> Result<(), StoreError> {
        let _w = self.writer.lock().await;
        let mut tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        for (to, from) in [
            ("data_key_check", "rotation_target_check"),
            ("lookup_key_wrapped", "rotation_lookup_wrapped"),
            ("key_generation", "rotation_generation"),
        ] {
            sqlx::query("INSERT OR REPLACE INTO hub_meta (name, value) SELECT ?, value FROM hub_meta WHERE name = ?")
                .bind(to)
                .bind(from)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM hub_meta WHERE name LIKE 'rotation_%'").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
