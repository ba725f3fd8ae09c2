//! PostgreSQL: the floor of benchmark P7 (docs/spec/performance.md: "the same rows by `COPY` into the same tables";
//! SQLite twin: `store/sqlite/bench.rs`). The persons and fact rows of a batch are sent with `COPY … FROM STDIN` (text
//! format) in one write transaction. Persons go through a temporary table and `INSERT … ON CONFLICT DO NOTHING`, as
//! ingest treats a known person (the same person arrives in several agencies' batches; COPY alone cannot skip a
//! duplicate key); the batch's `person_id`s are read back and the fact rows copied straight into `facts` (all current, first versions). Used by `doudi bench`.

use async_trait::async_trait;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};

use super::core::now_micros;
use super::{PgStore, money_to_numeric};
use crate::domain::fact::Payload;
use crate::security::crypto::PersonKey;
use crate::store::contract::*;
use crate::store::{NewPerson, PreparedFact, StoreError};

/// One row of COPY text format under construction: fields separated by tabs, `\N` for NULL.
struct CopyRow<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> CopyRow<'a> {
    fn new(out: &'a mut String) -> CopyRow<'a> {
        CopyRow { out, first: true }
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push('\t');
        }
        self.first = false;
    }

    /// A text field, with COPY's backslash escapes.
    fn text(&mut self, s: &str) -> &mut Self {
        self.sep();
        for c in s.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\t' => self.out.push_str("\\t"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                c => self.out.push(c),
            }
        }
        self
    }

    /// A field whose text form needs no escaping (numbers, dates, timestamps, booleans).
    fn plain(&mut self, s: impl std::fmt::Display) -> &mut Self {
        self.sep();
        let _ = write!(self.out, "{s}");
        self
    }

    fn opt_text(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    fn null(&mut self) -> &mut Self {
        self.sep();
        self.out.push_str("\\N");
        self
    }

    /// A BYTEA field in hex form (`\x…`, its backslash escaped for COPY).
    fn bytea(&mut self, b: &[u8]) -> &mut Self {
        self.sep();
        self.out.push_str("\\\\x");
        self.out.push_str(&hex::encode(b));
        self
    }

    fn end(&mut self) {
        self.out.push('\n');
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The COPY text of `persons` (person_key, id_cipher, id_masked, key_version, created_at).
fn persons_copy(persons: &[NewPerson], now: &str) -> String {
    let mut out = String::with_capacity(persons.len() * 200);
    for p in persons {
        CopyRow::new(&mut out)
            .bytea(p.person_key.as_bytes())
            .bytea(&p.id_cipher)
            .text(&p.id_masked)
            .plain(1)
            .plain(now)
            .end();
    }
    out
}

/// The COPY text of `facts`, every row current (columns as in [`FACTS_COPY`]).
fn facts_copy(facts: &[PreparedFact], ids: &crate::store::PersonIds, now: &str) -> Result<String, StoreError> {
    let mut out = String::with_capacity(facts.len() * 600);
    for f in facts {
        let mut row = CopyRow::new(&mut out);
        row.text(f.agency.as_str())
            .text(&f.fact.fact_id)
            .plain(f.fact.source_version as i64)
            .plain(*ids.get(&f.person_key).ok_or_else(|| crate::store::corrupt("persons", "no person_id"))?)
            .text(f.fact.payload.kind().as_str())
            .text(f.fact.division_code.as_str())
            .plain(date(f.fact.valid_from));
        match f.fact.valid_to {
            Some(d) => row.plain(date(d)),
            None => row.null(),
        };
        match &f.fact.payload {
            Payload::Assistance(a) => {
                row.opt_text(a.program.map(|p| p.as_str()))
                    .opt_text(a.status.map(|s| s.as_str()))
                    .opt_text(a.residence.map(|r| r.as_str()));
                match a.monthly_benefit {
                    Some(m) => row.plain(money_to_numeric(m)),
                    None => row.null(),
                };
            }
            _ => {
                row.null().null().null().null();
            }
        }
        row.text(&f.payload_json).bytea(&f.content_hash).plain(now).null().plain('t').end();
    }
    Ok(out)
}

const FACTS_COPY: &str = "COPY facts (agency, fact_id, source_version, person_id, kind, division_code, valid_from, \
                          valid_to, program, status, residence, benefit, payload, content_hash, recorded_at, \
                          superseded_at, is_current) FROM STDIN";

#[async_trait]
impl BenchFloor for PgStore {
    /// Insert `facts` (all current, first versions) and `persons` by COPY, in one write transaction.
    async fn bench_insert_rows(&self, facts: &[PreparedFact], persons: &[NewPerson]) -> Result<(), StoreError> {
        let now = timestamp(now_micros());
        let (_turn, mut tx) = self.begin_write(crate::store::writer::Priority::Bulk).await?;
        if !persons.is_empty() {
            sqlx::query(
                "CREATE TEMPORARY TABLE bench_persons (person_key BYTEA, id_cipher BYTEA, id_masked TEXT, \
                 key_version BIGINT, created_at TIMESTAMPTZ) ON COMMIT DROP",
            )
            .execute(&mut *tx)
            .await?;
            let mut copy = tx
                .copy_in_raw(
                    "COPY bench_persons (person_key, id_cipher, id_masked, key_version, created_at) FROM STDIN",
                )
                .await?;
            copy.send(persons_copy(persons, &now).into_bytes()).await?;
            copy.finish().await?;
            sqlx::query(
                "INSERT INTO persons (person_key, id_cipher, id_masked, key_version, created_at) \
                 SELECT person_key, id_cipher, id_masked, key_version, created_at FROM bench_persons b \
                 WHERE NOT EXISTS (SELECT 1 FROM persons p WHERE p.person_key = b.person_key) \
                 ON CONFLICT (person_key) DO NOTHING",
            )
            .execute(&mut *tx)
            .await?;
        }
        if !facts.is_empty() {
            let keys: Vec<PersonKey> = persons.iter().map(|p| p.person_key).collect();
            let ids = super::core::person_ids(&mut tx, &keys).await?;
            let text = facts_copy(facts, &ids, &now)?;
            let mut copy = tx.copy_in_raw(FACTS_COPY).await?;
            copy.send(text.into_bytes()).await?;
            copy.finish().await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// `INSERT … SELECT FROM UNNEST($1::bytea[])` into an identity-keyed table, one write transaction.
    async fn bench_append_blobs(&self, blobs: &[Vec<u8>]) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin_write(crate::store::writer::Priority::Bulk).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bench_blobs (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
             body BYTEA NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO bench_blobs (body) SELECT * FROM UNNEST($1::bytea[])")
            .bind(blobs)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes() {
        let mut out = String::new();
        CopyRow::new(&mut out).text("a\tb\\c\nd\re").bytea(&[0, 0xab]).null().plain(1).end();
        assert_eq!(out, "a\\tb\\\\c\\nd\\re\t\\\\x00ab\t\\N\t1\n");
    }

    #[test]
    fn timestamps_in_utc_with_microseconds() {
        let t = crate::store::from_micros(1_700_000_000_123_456);
        assert_eq!(timestamp(t), "2023-11-14 22:13:20.123456+00");
    }
}
