//! [`AdminStore`](crate::store::AdminStore) for both backends (migration 0016, docs/admin.md): administrative audit
//! events and the change requests of the two-person rule. Expanded by `admin_store!(Store)` in each backend's
//! `admin.rs`. Every write is one write transaction (`self.write()`) with its audit event in lane 0.

macro_rules! admin_store {
    ($store:ty) => {
        /// A change request read by `SELECT id, kind, payload, reason, requested_by, requested_at, expires_at,
        /// approved_by, approved_at, applied_by, applied_at` (both statements below spell out that list).
        fn change_row(r: &<Db as sqlx::Database>::Row) -> Result<crate::domain::admin::StoredChange, StoreError> {
            use sqlx::Row as _;
            let kind: String = r.try_get(1)?;
            let pair = |by: usize, at: usize| -> Result<Option<(String, chrono::DateTime<chrono::Utc>)>, StoreError> {
                Ok(match (r.try_get::<Option<String>, _>(by)?, value::get_opt_instant(r, at)?) {
                    (Some(who), Some(when)) => Some((who, when)),
                    _ => None,
                })
            };
            Ok(crate::domain::admin::StoredChange {
                id: r.try_get(0)?,
                kind: crate::domain::admin::ChangeKind::parse(&kind)
                    .ok_or_else(|| crate::store::corrupt("admin_changes", format!("unknown kind {kind:?}")))?,
                payload: r.try_get(2)?,
                reason: r.try_get(3)?,
                requested_by: r.try_get(4)?,
                requested_at: value::get_instant(r, 5)?,
                expires_at: value::get_instant(r, 6)?,
                approved: pair(7, 8)?,
                applied: pair(9, 10)?,
            })
        }

        /// Request `id` as read inside the write transaction `tx`.
        async fn change_in(
            conn: &mut <Db as sqlx::Database>::Connection,
            id: i64,
        ) -> Result<Option<crate::domain::admin::StoredChange>, StoreError> {
            let r = sqlx::query(
                "SELECT id, kind, payload, reason, requested_by, requested_at, expires_at, approved_by, approved_at, \
                 applied_by, applied_at FROM admin_changes WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
            r.as_ref().map(change_row).transpose()
        }

        #[async_trait::async_trait]
        impl crate::store::AdminStore for $store {
            async fn append_admin_event(&self, audit: &crate::store::AuditRecord) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                append_audit(&mut w.tx, audit, value::instant(chrono::Utc::now())).await?;
                w.tx.commit().await?;
                Ok(())
            }

            async fn request_change(
                &self,
                change: &crate::domain::admin::NewChange,
                audit: &(dyn Fn(i64) -> crate::store::AuditRecord + Send + Sync),
            ) -> Result<i64, StoreError> {
                let at = |t| crate::store::from_micros(crate::store::to_micros(t));
                let mut w = self.write().await?;
                let row = sqlx::query(
                    "INSERT INTO admin_changes (kind, payload, reason, requested_by, requested_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(change.kind.as_str())
                .bind(&change.payload)
                .bind(&change.reason)
                .bind(&change.requested_by)
                .bind(value::instant(at(change.requested_at)))
                .bind(value::instant(at(change.expires_at)))
                .fetch_one(&mut *w.tx)
                .await?;
                let id: i64 = sqlx::Row::try_get(&row, 0)?;
                append_audit(&mut w.tx, &audit(id), value::instant(chrono::Utc::now())).await?;
                w.tx.commit().await?;
                Ok(id)
            }

            async fn admin_changes(&self) -> Result<Vec<crate::domain::admin::StoredChange>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, kind, payload, reason, requested_by, requested_at, expires_at, approved_by, \
                     approved_at, applied_by, applied_at FROM admin_changes ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(change_row).collect()
            }

            async fn approve_change(
                &self,
                id: i64,
                approver: &str,
                at: chrono::DateTime<chrono::Utc>,
                audit: &(
                     dyn for<'c> Fn(&'c crate::domain::admin::StoredChange) -> crate::store::AuditRecord + Send + Sync
                 ),
            ) -> Result<Result<crate::domain::admin::StoredChange, crate::domain::admin::ApprovalRefusal>, StoreError>
            {
                let at = crate::store::from_micros(crate::store::to_micros(at));
                let mut w = self.write().await?;
                let Some(mut change) = change_in(&mut w.tx, id).await? else {
                    return Ok(Err(crate::domain::admin::ApprovalRefusal::Unknown(id)));
                };
                if let Err(refusal) = crate::domain::admin::check_approval(&change, approver, at) {
                    return Ok(Err(refusal));
                }
                sqlx::query(
                    "UPDATE admin_changes SET approved_by = $1, approved_at = $2 WHERE id = $3 AND approved_by IS NULL",
                )
                .bind(approver)
                .bind(value::instant(at))
                .bind(id)
                .execute(&mut *w.tx)
                .await?;
                change.approved = Some((approver.to_owned(), at));
                append_audit(&mut w.tx, &audit(&change), value::instant(chrono::Utc::now())).await?;
                w.tx.commit().await?;
                Ok(Ok(change))
            }

            async fn apply_change(
                &self,
                id: i64,
                by: &str,
                at: chrono::DateTime<chrono::Utc>,
                audit: &(
                     dyn for<'c> Fn(&'c crate::domain::admin::StoredChange) -> crate::store::AuditRecord + Send + Sync
                 ),
            ) -> Result<Option<crate::domain::admin::StoredChange>, StoreError> {
                let at = crate::store::from_micros(crate::store::to_micros(at));
                let mut w = self.write().await?;
                let Some(mut change) = change_in(&mut w.tx, id).await? else { return Ok(None) };
                if change.approved.is_none() || change.applied.is_some() {
                    return Ok(None);
                }
                sqlx::query("UPDATE admin_changes SET applied_by = $1, applied_at = $2 WHERE id = $3")
                    .bind(by)
                    .bind(value::instant(at))
                    .bind(id)
                    .execute(&mut *w.tx)
                    .await?;
                change.applied = Some((by.to_owned(), at));
                append_audit(&mut w.tx, &audit(&change), value::instant(chrono::Utc::now())).await?;
                w.tx.commit().await?;
                Ok(Some(change))
            }
        }
    };
}
