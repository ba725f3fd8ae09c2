//! [`CountersignStore`](crate::store::CountersignStore) for both backends (migration 0018, docs/countersign.md): the
//! partner agencies' signatures of frozen quarters. Expanded by `countersign_store!(Store)` in each backend's
//! `countersign.rs`; nothing differs between the dialects but the `value` module (instants) and `BYTE_ORDER`.

macro_rules! countersign_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::store::CountersignStore for $store {
            async fn add_snapshot_signature(
                &self,
                sig: &crate::store::NewSnapshotSignature,
                audit: &(dyn Fn(i64) -> crate::store::AuditRecord + Send + Sync),
            ) -> Result<Option<i64>, StoreError> {
                use sqlx::Row as _;
                let s = &sig.signature;
                let mut w = self.write().await?;
                let Some(snapshot) = sqlx::query("SELECT content_hash FROM snapshots WHERE quarter = $1")
                    .bind(&s.quarter)
                    .fetch_optional(&mut *w.tx)
                    .await?
                else {
                    return Ok(None);
                };
                if snapshot.try_get::<Vec<u8>, _>(0)? != s.content_hash {
                    return Ok(None);
                }
                let version: i64 = sqlx::query(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM snapshot_signatures WHERE quarter = $1 AND agency = $2",
                )
                .bind(&s.quarter)
                .bind(&s.agency)
                .fetch_one(&mut *w.tx)
                .await?
                .try_get(0)?;
                sqlx::query(
                    "INSERT INTO snapshot_signatures (quarter, agency, version, content_hash, signed_at, signature, \
                     signer_cert, recorded_at, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&s.quarter)
                .bind(&s.agency)
                .bind(version)
                .bind(s.content_hash.to_vec())
                .bind(value::instant(crate::store::from_micros(s.signed_at_micros)))
                .bind(&s.signature)
                .bind(&s.signer_cert_der)
                .bind(value::instant(sig.recorded_at))
                .bind(&sig.recorded_by)
                .execute(&mut *w.tx)
                .await?;
                append_audit(&mut w.tx, &audit(version), value::instant(chrono::Utc::now())).await?;
                w.tx.commit().await?;
                Ok(Some(version))
            }

            async fn snapshot_signatures(
                &self,
                quarter: crate::domain::calendar::Quarter,
            ) -> Result<Vec<crate::store::StoredSnapshotSignature>, StoreError> {
                let quarter = quarter.to_string();
                let quarter = quarter.as_str();
                use sqlx::Row as _;
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT s.agency, s.version, s.content_hash, s.signed_at, s.signature, s.signer_cert, \
                     s.recorded_at, s.recorded_by FROM snapshot_signatures s WHERE s.quarter = $1 AND s.version = \
                     (SELECT MAX(m.version) FROM snapshot_signatures m WHERE m.quarter = s.quarter \
                     AND m.agency = s.agency) ORDER BY s.agency{}",
                    value::BYTE_ORDER
                )))
                .bind(quarter)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let hash: Vec<u8> = r.try_get(2)?;
                        Ok(crate::store::StoredSnapshotSignature {
                            signature: crate::security::countersign::Countersignature {
                                quarter: quarter.to_owned(),
                                agency: r.try_get(0)?,
                                content_hash: <[u8; 32]>::try_from(hash).map_err(|_| {
                                    crate::store::corrupt("snapshot_signatures", "content_hash is not 32 bytes")
                                })?,
                                signed_at_micros: crate::store::to_micros(value::get_instant(r, 3)?),
                                signature: r.try_get(4)?,
                                signer_cert_der: r.try_get(5)?,
                            },
                            version: r.try_get(1)?,
                            recorded_at: value::get_instant(r, 6)?,
                            recorded_by: r.try_get(7)?,
                        })
                    })
                    .collect()
            }
        }
    };
}
