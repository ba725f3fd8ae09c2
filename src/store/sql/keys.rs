//! [`KeyRotation`](crate::store::KeyRotation) for both backends: the data key's check value and the resumable
//! re-encryption of ID numbers (docs/spec/security.md: "Rotating the data key is a documented command"). The stored ID
//! numbers are re-encrypted under a new data key in resumable batches; the person keys never change (the original
//! lookup key is kept, wrapped under the current data key, in `hub_meta`).
//!
//! `hub_meta` rows: `data_key_check` (the current key's check value), `lookup_key_wrapped` (absent until the first
//! rotation: the lookup key is then the one derived from the data key), `key_generation` (1 until rotated), and
//! while a rotation runs `rotation_target_check`, `rotation_lookup_wrapped`, `rotation_generation`.
//!
//! Expanded by `key_rotation!(Store)` in each backend's `keys.rs`, which also provides `rotate_rows(tx, rows,
//! generation)`: the one statement that differs (a row at a time on SQLite, one UNNEST on PostgreSQL).

macro_rules! key_rotation {
    ($store:ty) => {
        fn meta_i64(v: Option<Vec<u8>>) -> Option<i64> {
            v.and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.parse().ok())
        }

        async fn get_meta(tx: &mut sqlx::Transaction<'static, Db>, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(sqlx::query_scalar("SELECT value FROM hub_meta WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut **tx)
                .await?)
        }

        #[async_trait::async_trait]
        impl crate::store::KeyRotation for $store {
            async fn meta(&self, name: &str) -> Option<Vec<u8>> {
                sqlx::query_scalar("SELECT value FROM hub_meta WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .ok()
                    .flatten()
            }

            async fn rotation_begin(
                &self,
                old_check: &[u8; 32],
                new_check: &[u8; 32],
                lookup_wrapped_new: &[u8],
            ) -> Result<RotationStart, StoreError> {
                let mut w = self.write().await?;
                let current = get_meta(&mut w.tx, "data_key_check").await?;
                if current.as_deref() == Some(new_check.as_slice()) {
                    return Ok(RotationStart::AlreadyDone);
                }
                if current.as_deref() != Some(old_check.as_slice()) {
                    return Ok(RotationStart::WrongOldKey);
                }
                if let Some(t) = get_meta(&mut w.tx, "rotation_target_check").await?
                    && t.as_slice() != new_check.as_slice()
                {
                    return Ok(RotationStart::OtherRotationInProgress);
                }
                let generation = match meta_i64(get_meta(&mut w.tx, "rotation_generation").await?) {
                    Some(g) => g,
                    None => meta_i64(get_meta(&mut w.tx, "key_generation").await?).unwrap_or(1) + 1,
                };
                for (name, value) in [
                    ("rotation_target_check", new_check.to_vec()),
                    ("rotation_lookup_wrapped", lookup_wrapped_new.to_vec()),
                    ("rotation_generation", generation.to_string().into_bytes()),
                ] {
                    sqlx::query(
                        "INSERT INTO hub_meta (name, value) VALUES ($1, $2) \
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    )
                    .bind(name)
                    .bind(value)
                    .execute(&mut *w.tx)
                    .await?;
                }
                w.tx.commit().await?;
                Ok(RotationStart::Run { generation })
            }

            async fn persons_to_rotate(
                &self,
                generation: i64,
                limit: usize,
            ) -> Result<Vec<(PersonKey, Vec<u8>)>, StoreError> {
                let rows = sqlx::query("SELECT person_key, id_cipher FROM persons WHERE key_version <> $1 AND id_cipher IS NOT NULL LIMIT $2")
                    .bind(generation)
                    .bind(limit as i64)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        let k: Vec<u8> = r.try_get(0)?;
                        let key = PersonKey::from_slice(&k).ok_or_else(|| corrupt("persons", "person_key length"))?;
                        Ok((key, r.try_get(1)?))
                    })
                    .collect()
            }

            async fn rotate_persons(&self, rows: &[(PersonKey, Vec<u8>)], generation: i64) -> Result<u64, StoreError> {
                if rows.is_empty() {
                    return Ok(0);
                }
                let mut w = self.write().await?;
                let n = rotate_rows(&mut w.tx, rows, generation).await?;
                w.tx.commit().await?;
                Ok(n)
            }

            async fn rotation_finish(&self) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                for (to, from) in [
                    ("data_key_check", "rotation_target_check"),
                    ("lookup_key_wrapped", "rotation_lookup_wrapped"),
                    ("key_generation", "rotation_generation"),
                ] {
                    // `WHERE true` lets SQLite parse the upsert after a SELECT (its documented ambiguity rule).
                    sqlx::query(
                        "INSERT INTO hub_meta (name, value) SELECT $1, value FROM hub_meta WHERE name = $2 AND true \
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    )
                    .bind(to)
                    .bind(from)
                    .execute(&mut *w.tx)
                    .await?;
                }
                sqlx::query("DELETE FROM hub_meta WHERE name LIKE 'rotation\\_%' ESCAPE '\\'")
                    .execute(&mut *w.tx)
                    .await?;
                w.tx.commit().await?;
                Ok(())
            }
        }
    };
}
