//! [`SubsidyStore`](crate::store::SubsidyStore) for both backends: price-index versions and linkage rule versions
//! (migration 0021; issue 18, docs/subsidies.md). Expanded by `subsidy_store!(Store)` in each backend's
//! `subsidy.rs`; every statement is the same text on both. Rises are stored as the canonical text of
//! `domain::subsidy::Rise` and parsed back (a value that does not parse is `Corrupt`, never skipped).

macro_rules! subsidy_store {
    ($store:ty) => {
        const PRICE_INDEX_COLUMNS: &str =
            "month, version, cpi_yoy, food_cpi_yoy, scpi_yoy, published_on, agency, recorded_at";

        fn price_index_row(r: &<Db as sqlx::Database>::Row) -> Result<StoredPriceIndex, StoreError> {
            const T: &str = "price_indices";
            let rise = |i: usize| -> Result<Rise, StoreError> {
                let s: String = r.try_get(i)?;
                Rise::parse(&s).map_err(|e| corrupt(T, format!("{s:?}: {e}")))
            };
            let month: String = r.try_get(0)?;
            let scpi: Option<String> = r.try_get(4)?;
            Ok(StoredPriceIndex {
                index: PriceIndex {
                    month: month.parse().map_err(|_| corrupt(T, format!("month {month:?}")))?,
                    cpi_yoy: rise(2)?,
                    food_cpi_yoy: rise(3)?,
                    scpi_yoy: match scpi {
                        None => None,
                        Some(s) => Some(Rise::parse(&s).map_err(|e| corrupt(T, format!("{s:?}: {e}")))?),
                    },
                    published_on: value::get_date(r, 5, T)?,
                },
                version: r.try_get(1)?,
                agency: r.try_get(6)?,
                recorded_at: value::get_instant(r, 7)?,
            })
        }

        #[async_trait::async_trait]
        impl crate::store::SubsidyStore for $store {
            async fn push_price_indices(
                &self,
                rows: &[PriceIndex],
                agency: &crate::domain::agency::AgencyCode,
                audit: &AuditRecord,
                now: DateTime<Utc>,
            ) -> Result<Vec<Decision>, StoreError> {
                let agency = agency.as_str();
                let now = crate::store::from_micros(crate::store::to_micros(now));
                let mut w = self.write().await?;
                let mut out = Vec::with_capacity(rows.len());
                for p in rows {
                    let month = p.month.to_string();
                    let current = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {PRICE_INDEX_COLUMNS} FROM price_indices WHERE month = $1 ORDER BY version DESC LIMIT 1"
                    )))
                    .bind(&month)
                    .fetch_optional(&mut *w.tx)
                    .await?;
                    let current = current.as_ref().map(price_index_row).transpose()?;
                    let (decision, version) = match &current {
                        None => (Decision::Accepted, 1),
                        Some(c) if c.index == *p => (Decision::Duplicate, c.version),
                        Some(c) => (Decision::NewVersion, c.version + 1),
                    };
                    if decision.writes() {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "INSERT INTO price_indices ({PRICE_INDEX_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                        )))
                        .bind(&month)
                        .bind(version)
                        .bind(p.cpi_yoy.to_string())
                        .bind(p.food_cpi_yoy.to_string())
                        .bind(p.scpi_yoy.map(|s| s.to_string()))
                        .bind(value::date(p.published_on))
                        .bind(agency)
                        .bind(value::instant(now))
                        .execute(&mut *w.tx)
                        .await?;
                    }
                    out.push(decision);
                }
                append_audit(&mut w.tx, audit, value::instant(now)).await?;
                w.tx.commit().await?;
                Ok(out)
            }

            async fn price_index_versions(&self, from: Month, to: Month) -> Result<Vec<StoredPriceIndex>, StoreError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {PRICE_INDEX_COLUMNS} FROM price_indices WHERE month >= $1 AND month <= $2 \
                     ORDER BY month, version"
                )))
                .bind(from.to_string())
                .bind(to.to_string())
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(price_index_row).collect()
            }

            async fn linkage_rules(&self) -> Result<Vec<StoredLinkageRule>, StoreError> {
                const T: &str = "linkage_rules";
                let rows = sqlx::query("SELECT params, source FROM linkage_rules ORDER BY effective_from")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        let json: String = r.try_get(0)?;
                        let rule = LinkageRule::from_json(&json).map_err(|e| corrupt(T, e.to_string()))?;
                        Ok(StoredLinkageRule { rule, source: r.try_get(1)? })
                    })
                    .collect()
            }

            async fn fixed_campaigns(&self) -> Result<Vec<StoredFixedCampaign>, StoreError> {
                const T: &str = "fixed_campaigns";
                let rows = sqlx::query("SELECT params, source FROM fixed_campaigns ORDER BY month, code")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        let json: String = r.try_get(0)?;
                        let campaign = FixedCampaign::from_json(&json).map_err(|e| corrupt(T, e.to_string()))?;
                        Ok(StoredFixedCampaign { campaign, source: r.try_get(1)? })
                    })
                    .collect()
            }

            async fn add_fixed_campaign(
                &self,
                c: &StoredFixedCampaign,
                audit: &AuditRecord,
            ) -> Result<bool, StoreError> {
                let json = serde_json::to_string(&c.campaign).map_err(|e| corrupt("fixed_campaigns", e.to_string()))?;
                let now = crate::store::from_micros(crate::store::to_micros(Utc::now()));
                let mut w = self.write().await?;
                let done = sqlx::query(
                    "INSERT INTO fixed_campaigns (code, month, fund_program, params, source, added_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(&c.campaign.code)
                .bind(c.campaign.month.to_string())
                .bind(&c.campaign.fund_program)
                .bind(json)
                .bind(&c.source)
                .bind(value::instant(now))
                .execute(&mut *w.tx)
                .await?;
                let added = done.rows_affected() == 1;
                if added {
                    append_audit(&mut w.tx, audit, value::instant(now)).await?;
                }
                w.tx.commit().await?;
                Ok(added)
            }

            async fn add_linkage_rule(
                &self,
                r: &StoredLinkageRule,
                audit: Option<&AuditRecord>,
            ) -> Result<bool, StoreError> {
                let json = serde_json::to_string(&r.rule).map_err(|e| corrupt("linkage_rules", e.to_string()))?;
                let now = crate::store::from_micros(crate::store::to_micros(Utc::now()));
                let mut w = self.write().await?;
                let done = sqlx::query(
                    "INSERT INTO linkage_rules (version, effective_from, params, source, added_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(&r.rule.version)
                .bind(r.rule.effective_from.to_string())
                .bind(json)
                .bind(&r.source)
                .bind(value::instant(now))
                .execute(&mut *w.tx)
                .await?;
                let added = done.rows_affected() == 1;
                if let Some(audit) = audit.filter(|_| added) {
                    append_audit(&mut w.tx, audit, value::instant(now)).await?;
                }
                w.tx.commit().await?;
                Ok(added)
            }
        }
    };
}
