//! [`SnapshotStore`](crate::store::SnapshotStore) for both backends: quarterly snapshots (migration 0006;
//! docs/spec/coordination.md, docs/snapshot-format.md). Expanded by `snapshot_store!(Store)` in each backend's
//! `snapshot.rs`, which keeps what differs:
//! - `person_pass(conn, input, cutoff, as_of)`: the one pass over the versions in force, person by person (SQLite
//!   joins each person's rows into one, sqlx's SQLite driver costing far more per row than the SQL does);
//! - `map_this_read(conn)`: map the database file for the reads that follow on a pool connection that is closed, not
//!   returned to the pool, when dropped (SQLite: `mmap_size`; PostgreSQL: nothing to do).
//! - `statuses_hash(conn, quarter)`: the statuses section's hash from the stored rows (SQLite again one row a person);
//! - `store_rows(conn, quarter, coverage, sections)`: the coverage rows and JSON sections (multi-row VALUES, UNNEST);
//! - `STATUS_COPY_ORDER`: how the status rows are copied (SQLite in primary-key order);
//! - `BENEFIT`: the facts' monthly benefit column (`benefit_fen`, INTEGER fen; `benefit`, NUMERIC yuan).
//!
//! Every text `ORDER BY` or comparison that feeds a hash or an output is in byte order (`value::BYTE_ORDER`: SQLite's
//! BINARY collation, `COLLATE "C"` on PostgreSQL), so the same data hashes to the same snapshot on both backends
//! whatever the database's collation.
//!
//! `create_snapshot` runs in one write transaction (`self.write()`): the statuses are copied from the facts in force
//! (as known now, which is the knowledge cutoff, since no other writer can run meanwhile), then read back once, person
//! by person, to compute the aggregates and the coverage findings; the sections are stored and hashed; a second call
//! for the same quarter finds the first one's row and changes nothing.

macro_rules! snapshot_store {
    ($store:ty) => {
        const HEADER_COLUMNS: &str =
            "quarter, as_of, knowledge_cutoff, created_by, previous_quarter, previous_hash, section_hashes, content_hash";

        fn hash32(table: &'static str, v: Vec<u8>) -> Result<[u8; 32], StoreError> {
            v.try_into().map_err(|_| corrupt(table, "hash length"))
        }

        fn header_row(r: &<Db as sqlx::Database>::Row) -> Result<SnapshotHeader, StoreError> {
            let sections: String = r.try_get(6)?;
            Ok(SnapshotHeader {
                quarter: r.try_get(0)?,
                as_of: value::get_date(r, 1, "snapshots")?,
                knowledge_cutoff: value::get_instant(r, 2)?,
                created_by: r.try_get(3)?,
                previous_quarter: r.try_get(4)?,
                previous_hash: hash32("snapshots", r.try_get(5)?)?,
                section_hashes: serde_json::from_str(&sections).map_err(|e| corrupt("snapshots", e.to_string()))?,
                content_hash: hash32("snapshots", r.try_get(7)?)?,
            })
        }

        async fn header(
            conn: &mut <Db as sqlx::Database>::Connection,
            quarter: &str,
        ) -> Result<Option<SnapshotHeader>, StoreError> {
            let r = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {HEADER_COLUMNS} FROM snapshots WHERE quarter = $1")))
                .bind(quarter)
                .fetch_optional(&mut *conn)
                .await?;
            r.as_ref().map(header_row).transpose()
        }

        /// The columns [`pass_row`] reads, from `facts f` joined with `persons p`.
        const PASS_COLUMNS: &str = "f.person_id, p.person_key, f.agency, f.fact_id, f.source_version, f.kind, \
             substr(f.division_code, 1, 6), f.content_hash, f.payload, p.id_cipher";

        /// A status row from the seven columns from `i` on: person_key, agency, fact_id, source_version, kind,
        /// county_code, content_hash (`key_table` and `hash_table` name where a malformed key or hash was read).
        fn status_at(
            r: &<Db as sqlx::Database>::Row,
            i: usize,
            key_table: &'static str,
            hash_table: &'static str,
        ) -> Result<StatusRow, StoreError> {
            Ok(StatusRow {
                person_key: hash32(key_table, r.try_get(i)?)?,
                agency: r.try_get(i + 1)?,
                fact_id: r.try_get(i + 2)?,
                source_version: r.try_get::<i64, _>(i + 3)? as u64,
                kind: r.try_get(i + 4)?,
                county_code: r.try_get(i + 5)?,
                content_hash: hash32(hash_table, r.try_get(i + 6)?)?,
            })
        }

        fn pass_row(r: &<Db as sqlx::Database>::Row) -> Result<PassRow, StoreError> {
            Ok(PassRow {
                person_id: r.try_get(0)?,
                status: status_at(r, 1, "persons", "facts")?,
                payload: r.try_get(8)?,
                cipher: r.try_get(9)?,
            })
        }

        async fn coverage_hash(conn: &mut <Db as sqlx::Database>::Connection, quarter: &str) -> Result<[u8; 32], StoreError> {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT code, person_key, agency_to_act, county_code FROM snapshot_coverage WHERE quarter = $1 \
                 ORDER BY code{}, person_key",
                value::BYTE_ORDER
            )))
            .bind(quarter)
            .fetch_all(&mut *conn)
            .await?;
            let mut lines = Vec::with_capacity(rows.len());
            for r in rows {
                lines.push(
                    CoverageRow {
                        code: r.try_get(0)?,
                        person_key: hash32("snapshot_coverage", r.try_get(1)?)?,
                        agency_to_act: r.try_get(2)?,
                        county_code: r.try_get(3)?,
                    }
                    .canonical_line(),
                );
            }
            Ok(rows_hash(lines.into_iter()))
        }

        /// Every section's hash recomputed from what is stored (creation and verification alike).
        async fn section_hashes(
            conn: &mut <Db as sqlx::Database>::Connection,
            quarter: &str,
        ) -> Result<BTreeMap<String, [u8; 32]>, StoreError> {
            let mut out = BTreeMap::new();
            out.insert("statuses".to_owned(), statuses_hash(conn, quarter).await?);
            out.insert("coverage".to_owned(), coverage_hash(conn, quarter).await?);
            let rows = sqlx::query("SELECT section, body FROM snapshot_sections WHERE quarter = $1")
                .bind(quarter)
                .fetch_all(&mut *conn)
                .await?;
            for r in rows {
                let name: String = r.try_get(0)?;
                let body: String = r.try_get(1)?;
                out.insert(name, body_hash(&body));
            }
            Ok(out)
        }

        /// Section 5 for the quarter ending `as_of`: settlements settled in the quarter and received by the cutoff.
        async fn medical_section(
            conn: &mut <Db as sqlx::Database>::Connection,
            as_of: NaiveDate,
            cutoff: DateTime<Utc>,
        ) -> Result<MedicalSection, StoreError> {
            let q = crate::domain::calendar::Quarter::of(as_of);
            let (from, to) = (q.first_day(), q.last_day());
            let r = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*), COUNT(DISTINCT person_key), \
                 COUNT(DISTINCT CASE WHEN medical_assistance_paid > 0 THEN person_key END), {}, {}, {}, {}, {} \
                 FROM settlements WHERE settled_on >= $1 AND settled_on <= $2 AND received_at <= $3",
                value::sum_fen("total_cost"),
                value::sum_fen("out_of_pocket"),
                value::sum_fen("basic_paid"),
                value::sum_fen("critical_illness_paid"),
                value::sum_fen("medical_assistance_paid")
            )))
            .bind(value::date(from))
            .bind(value::date(to))
            .bind(value::instant(cutoff))
            .fetch_one(&mut *conn)
            .await?;
            let m = |k: usize| value::get_sum_money(&r, 3 + k * value::SUM_COLUMNS, "settlements");
            let mut by_county = Vec::new();
            for f in sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT substr(division_code, 1, 6), code, COUNT(*) FROM medical_findings WHERE settled_on >= $1 \
                 AND settled_on <= $2 AND detected_at <= $3 AND (resolved_at IS NULL OR resolved_at > $3) \
                 GROUP BY 1, 2 ORDER BY substr(division_code, 1, 6){b}, code{b}",
                b = value::BYTE_ORDER
            )))
            .bind(value::date(from))
            .bind(value::date(to))
            .bind(value::instant(cutoff))
            .fetch_all(&mut *conn)
            .await?
            {
                by_county.push(CountyCodeCount {
                    county_code: f.try_get(0)?,
                    code: f.try_get(1)?,
                    count: f.try_get::<i64, _>(2)? as u64,
                });
            }
            let totals = SettlementTotals {
                settlements: r.try_get::<i64, _>(0)? as u64,
                persons: r.try_get::<i64, _>(1)? as u64,
                persons_assisted: r.try_get::<i64, _>(2)? as u64,
                total_cost: m(0)?,
                out_of_pocket: m(1)?,
                paid: Tiers { basic: m(2)?, critical_illness: m(3)?, medical_assistance: m(4)? },
            };
            Ok(medical_section_of(totals, by_county))
        }

        #[async_trait::async_trait]
        impl crate::store::SnapshotStore for $store {
            async fn create_snapshot(&self, input: SnapshotInput<'_>) -> Result<CreateOutcome, StoreError> {
                let b = value::BYTE_ORDER;
                let mut w = self.write().await?;
                let q = input.quarter.as_str();
                if let Some(h) = header(&mut w.tx, q).await? {
                    return Ok(CreateOutcome::AlreadyExists(h));
                }
                let later: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT MAX(quarter{b}) FROM snapshots WHERE quarter > $1{b}"
                )))
                .bind(q)
                .fetch_one(&mut *w.tx)
                .await?;
                if let Some(l) = later {
                    return Ok(CreateOutcome::LaterExists(l));
                }
                let previous: Option<SnapshotHeader> = {
                    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {HEADER_COLUMNS} FROM snapshots WHERE quarter < $1{b} ORDER BY quarter{b} DESC LIMIT 1"
                    )))
                    .bind(q)
                    .fetch_optional(&mut *w.tx)
                    .await?;
                    r.as_ref().map(header_row).transpose()?
                };
                let as_of = input.as_of;
                // Microsecond precision, as stored and as hashed.
                let cutoff_micros = crate::store::to_micros(input.cutoff);
                let cutoff = crate::store::from_micros(cutoff_micros);
                let prev_cutoff = previous.as_ref().map(|p| value::instant(p.knowledge_cutoff));

                let started = std::time::Instant::now();
                // Section 1: statuses: the versions current at the cutoff (recorded by then and not yet superseded; a
                // correction recorded after the cutoff must not take its record out of the quarter).
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO snapshot_statuses (quarter, person_key, agency, fact_id, source_version, kind, \
                     county_code, content_hash) SELECT $1, p.person_key, f.agency, f.fact_id, f.source_version, \
                     f.kind, substr(f.division_code, 1, 6), f.content_hash FROM facts f \
                     JOIN persons p ON p.person_id = f.person_id \
                     WHERE (f.is_current = {} OR f.superseded_at > $2) AND f.recorded_at <= $2 \
                     AND f.valid_from <= $3 AND (f.valid_to IS NULL OR f.valid_to > $3){STATUS_COPY_ORDER}",
                    value::TRUE
                )))
                .bind(q)
                .bind(value::instant(cutoff))
                .bind(value::date(as_of))
                .execute(&mut *w.tx)
                .await?;
                tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "snapshot: statuses copied");

                let tally = person_pass(&mut w.tx, &input, cutoff, as_of).await?;
                tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "snapshot: aggregates and coverage");

                // Entries and exits against the previous snapshot.
                let mut before: Option<HashMap<([u8; 32], String), String>> = None;
                if let Some(p) = &previous {
                    let prev = before.insert(HashMap::new());
                    let rows = sqlx::query(
                        "SELECT s.person_key, f.program, s.county_code FROM snapshot_statuses s JOIN facts f \
                         ON f.agency = s.agency AND f.fact_id = s.fact_id AND f.source_version = s.source_version \
                         WHERE s.quarter = $1 AND s.kind = 'assistance' AND f.status = 'ACTIVE' AND f.program IS NOT NULL",
                    )
                    .bind(&p.quarter)
                    .fetch_all(&mut *w.tx)
                    .await?;
                    for r in rows {
                        prev.insert((hash32("snapshot_statuses", r.try_get(0)?)?, r.try_get(1)?), r.try_get(2)?);
                    }
                }
                let aggregates = aggregates(&tally, before.as_ref());

                // Section 3: agencies (since the previous snapshot's cutoff, or ever).
                let mut pushed = Vec::new();
                for r in sqlx::query(
                    "SELECT agency, COUNT(*) FILTER (WHERE $1 IS NULL OR recorded_at > $1), MAX(recorded_at) \
                     FROM facts WHERE recorded_at <= $2 GROUP BY agency",
                )
                .bind(prev_cutoff)
                .bind(value::instant(cutoff))
                .fetch_all(&mut *w.tx)
                .await?
                {
                    let last = crate::store::to_micros(value::get_instant(&r, 2)?);
                    pushed.push((r.try_get(0)?, r.try_get::<i64, _>(1)? as u64, last));
                }
                let mut outcomes = Vec::new();
                for r in sqlx::query(
                    "SELECT agency, outcome FROM audit_events WHERE ($1 IS NULL OR at > $1) AND at <= $2 \
                     AND (method LIKE '%/PushFacts' OR method LIKE '%/StreamFacts') AND outcome LIKE '%rejected=%'",
                )
                .bind(prev_cutoff)
                .bind(value::instant(cutoff))
                .fetch_all(&mut *w.tx)
                .await?
                {
                    outcomes.push((r.try_get(0)?, r.try_get(1)?));
                }
                let agencies = agency_stats(pushed, outcomes, cutoff_micros);
                tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "snapshot: agencies");

                // Section 5: medical, settlements settled in the quarter and received by the cutoff.
                let medical = medical_section(&mut w.tx, as_of, cutoff).await?;

                // Section 8: late corrections.
                let mut late = Vec::new();
                if let Some(p) = &previous {
                    for r in sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT agency, kind, COUNT(*), COUNT(DISTINCT person_id) FROM facts WHERE recorded_at > $1 \
                         AND recorded_at <= $2 AND valid_from <= $3 AND (valid_to IS NULL OR valid_to > $3) \
                         GROUP BY agency, kind ORDER BY agency{b}, kind{b}"
                    )))
                    .bind(value::instant(p.knowledge_cutoff))
                    .bind(value::instant(cutoff))
                    .bind(value::date(p.as_of))
                    .fetch_all(&mut *w.tx)
                    .await?
                    {
                        late.push(LateCorrection {
                            agency: r.try_get(0)?,
                            kind: r.try_get(1)?,
                            facts: r.try_get::<i64, _>(2)? as u64,
                            persons: r.try_get::<i64, _>(3)? as u64,
                        });
                    }
                }
                tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "snapshot: medical, late corrections");

                // Store the coverage rows and the JSON sections.
                let sections = json_sections(&aggregates, &agencies, &medical, &late, &input.hub_sections)?;
                store_rows(&mut w.tx, q, &tally.coverage, sections).await?;
                let hashes = section_hashes(&mut w.tx, q).await?;
                tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "snapshot: sections stored and hashed");
                let (content, previous_hash, section_hex) = seal(q, as_of, cutoff_micros, &hashes, previous.as_ref())?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO snapshots ({HEADER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                )))
                .bind(q)
                .bind(value::date(as_of))
                .bind(value::instant(cutoff))
                .bind(&input.created_by)
                .bind(previous.as_ref().map(|p| p.quarter.clone()))
                .bind(previous_hash.to_vec())
                .bind(section_hex)
                .bind(content.to_vec())
                .execute(&mut *w.tx)
                .await?;
                let created = header(&mut w.tx, q).await?.ok_or_else(|| corrupt("snapshots", "vanished"))?;
                w.tx.commit().await?;
                Ok(CreateOutcome::Created(created))
            }

            async fn snapshot(&self, quarter: crate::domain::calendar::Quarter) -> Result<Option<SnapshotHeader>, StoreError> {
                let quarter = quarter.to_string();
                let quarter = quarter.as_str();
                let mut conn = self.pool.acquire().await?;
                header(&mut conn, quarter).await
            }

            async fn snapshots(&self) -> Result<Vec<SnapshotHeader>, StoreError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {HEADER_COLUMNS} FROM snapshots ORDER BY quarter{}",
                    value::BYTE_ORDER
                )))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(header_row).collect()
            }

            async fn snapshot_section(&self, quarter: crate::domain::calendar::Quarter, section: &str) -> Result<Option<String>, StoreError> {
                let quarter = quarter.to_string();
                let quarter = quarter.as_str();
                Ok(sqlx::query_scalar("SELECT body FROM snapshot_sections WHERE quarter = $1 AND section = $2")
                    .bind(quarter)
                    .bind(section)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn snapshot_coverage_counts(
                &self,
                quarter: crate::domain::calendar::Quarter,
            ) -> Result<Vec<(String, String, String, u64)>, StoreError> {
                let quarter = quarter.to_string();
                let quarter = quarter.as_str();
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT code, agency_to_act, county_code, COUNT(*) FROM snapshot_coverage WHERE quarter = $1 \
                     GROUP BY code, agency_to_act, county_code ORDER BY code{b}, county_code{b}, agency_to_act{b}",
                    b = value::BYTE_ORDER
                )))
                .bind(quarter)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get::<i64, _>(3)? as u64)))
                    .collect()
            }

            async fn active_by_county_program(
                &self,
                on: NaiveDate,
            ) -> Result<HashMap<(String, String), (u64, u64, i128)>, StoreError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT substr(division_code, 1, 6), program, COUNT(DISTINCT person_id), COUNT(DISTINCT {}), {} \
                     FROM facts WHERE is_current = {} AND program IS NOT NULL AND status = 'ACTIVE' \
                     AND valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1) GROUP BY 1, 2",
                    value::json_field("payload", "household_id"),
                    value::sum_fen(BENEFIT),
                    value::TRUE
                )))
                .bind(value::date(on))
                .fetch_all(&self.pool)
                .await?;
                let mut out = HashMap::new();
                for r in rows {
                    out.insert(
                        (r.try_get(0)?, r.try_get(1)?),
                        (
                            r.try_get::<i64, _>(2)? as u64,
                            r.try_get::<i64, _>(3)? as u64,
                            value::get_sum_fen(&r, 4, "facts")?,
                        ),
                    );
                }
                Ok(out)
            }

            async fn findings_by_code_between(
                &self,
                from: NaiveDate,
                to: NaiveDate,
            ) -> Result<Vec<(String, u64)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT code, COUNT(*) FROM medical_findings WHERE settled_on >= $1 AND settled_on <= $2 \
                     AND resolved_at IS NULL GROUP BY code",
                )
                .bind(value::date(from))
                .bind(value::date(to))
                .fetch_all(&self.pool)
                .await?;
                let mut by: BTreeMap<String, u64> = BTreeMap::new();
                for r in rows {
                    by.insert(r.try_get(0)?, r.try_get::<i64, _>(1)? as u64);
                }
                Ok(all_codes(by))
            }

            async fn verify_snapshot(&self, quarter: crate::domain::calendar::Quarter) -> Result<Option<Verification>, StoreError> {
                let quarter = quarter.to_string();
                let quarter = quarter.as_str();
                let mut conn = self.pool.acquire().await?;
                let Some(h) = header(&mut conn, quarter).await? else { return Ok(None) };
                let hashes = section_hashes(&mut conn, quarter).await?;
                let previous = match &h.previous_quarter {
                    Some(pq) => match header(&mut conn, pq).await? {
                        Some(p) => {
                            let p_hashes = section_hashes(&mut conn, pq).await?;
                            PreviousCheck::Recomputed(pq.clone(), recompute(&p, &p_hashes))
                        }
                        None => PreviousCheck::Missing(pq.clone()),
                    },
                    None => PreviousCheck::None,
                };
                let (recomputed, mut differences) = header_differences(&h, &hashes, previous);
                // The fact versions the statuses point at must still carry the content they had (the first five that
                // do not, in the statuses' order).
                // Each status looks its fact version up at random (statuses are in person-key order): the read maps
                // the file where the backend can, on a connection closed after it (`map_this_read`).
                map_this_read(&mut conn).await?;
                let changed = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT s.agency, s.fact_id, s.source_version FROM snapshot_statuses s LEFT JOIN facts f \
                     ON f.agency = s.agency AND f.fact_id = s.fact_id AND f.source_version = s.source_version \
                     WHERE s.quarter = $1 AND (f.content_hash IS NULL OR f.content_hash != s.content_hash) \
                     ORDER BY s.person_key, s.agency{b}, s.fact_id{b} LIMIT 5",
                    b = value::BYTE_ORDER
                )))
                .bind(quarter)
                .fetch_all(&mut *conn)
                .await?;
                for r in changed {
                    let (a, id, v): (String, String, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                    differences.push(altered_fact(&a, &id, v));
                }
                Ok(Some(Verification { header: h, recomputed_content_hash: recomputed, differences }))
            }
        }
    };
}
