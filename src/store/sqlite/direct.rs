//! The ingest's row work on the writer connection's own SQLite handle (issue 16, P1).
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every statement, and every row it returns, across
//! a channel to the async side. For the few statements of a transaction that is cheap; for the ingest's row work
//! (a look-up per record and per person, an insert per version and per new person) it was not: a profile of P1 at
//! 1,000,000 facts showed the writer thread idle a third of the time, waiting for the next statement, and a fifth of
//! its busy time copying and freeing bound values. Here that work runs in one call on the same connection, inside the
//! same transaction, through rusqlite's prepared statements over sqlx's locked handle
//! ([`sqlx::sqlite::LockedSqliteHandle`]: while it is held, sqlx's thread makes no call on the handle). The statements
//! are the same as before; they are prepared once per call and run once per row, with values bound in place.
//!
//! Everything here runs inside a transaction the caller began (`BEGIN IMMEDIATE` on the writer connection) and
//! commits or rolls back: these functions never begin, commit or roll back.

use rusqlite::{Connection, OptionalExtension, params};
use sqlx::SqliteConnection;

use crate::domain::fact::Payload;
use crate::security::crypto::PersonKey;
use crate::store::{Current, CurrentVersions, NewPerson, PersonIds, PreparedFact, StoreError, WriteHasher, corrupt};

/// Run `work` on `conn`'s SQLite handle, in this thread, holding sqlx's lock of the handle (its worker thread makes no
/// call meanwhile). On a multi-threaded runtime the thread is first handed over to blocking work
/// ([`tokio::task::block_in_place`]) so that the runtime's other tasks move to its other workers; on a
/// current-thread runtime (tests) it simply runs. `work` must leave the handle as it found it: no statement left
/// running (rusqlite finalizes its statements when they drop), no transaction begun or ended.
pub(super) async fn on_handle<R>(
    conn: &mut SqliteConnection,
    work: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let mut locked = conn.lock_handle().await?;
    let raw = locked.as_raw_handle().as_ptr();
    // SAFETY: `raw` is the open handle of `conn`; `locked` guarantees that sqlx's worker thread makes no call on it
    // until `locked` is dropped, after `db` below. A connection made by `from_handle` does not close the handle when
    // it drops (rusqlite: "will not be closed when the returned connection is dropped"). sqlx links the same
    // libsqlite3-sys (0.37) as rusqlite 0.39, so the handle's type is the same.
    let db = unsafe { Connection::from_handle(raw) }?;
    let run = || work(&db);
    let out = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
        _ => run(),
    };
    drop(db);
    drop(locked);
    out
}

/// The stored current version of each `(agency, fact_id)` of `facts` that has one: one search of the primary key
/// `(agency, fact_id, source_version)` per record.
pub(super) fn current_versions(db: &Connection, facts: &[&PreparedFact]) -> Result<CurrentVersions, StoreError> {
    let mut stmt = db.prepare(
        "SELECT source_version, content_hash, division_code FROM facts \
         WHERE agency = ?1 AND fact_id = ?2 AND is_current = 1",
    )?;
    let mut current = CurrentVersions::default();
    let mut seen: std::collections::HashSet<(&str, &str), WriteHasher> =
        std::collections::HashSet::with_capacity_and_hasher(facts.len(), WriteHasher::default());
    for f in facts {
        let (agency, fact_id) = (f.agency.as_str(), f.fact.fact_id.as_str());
        if !seen.insert((agency, fact_id)) {
            continue;
        }
        let row = stmt
            .query_row(params![agency, fact_id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, String>(2)?))
            })
            .optional()?;
        if let Some((source_version, hash, division)) = row {
            let content_hash: [u8; 32] = hash.try_into().map_err(|_| corrupt("facts", "content_hash length"))?;
            let version =
                crate::domain::versioning::CurrentVersion { source_version: source_version as u64, content_hash };
            current.insert((agency.to_owned(), fact_id.to_owned()), Current { version, division });
        }
    }
    Ok(current)
}

/// Mark the current version of each `(agency, fact_id)` superseded at `now`.
pub(super) fn supersede(db: &Connection, superseded: &[(String, String)], now: i64) -> Result<(), StoreError> {
    let mut stmt = db.prepare(
        "UPDATE facts SET is_current = 0, superseded_at = ?1 WHERE agency = ?2 AND fact_id = ?3 AND is_current = 1",
    )?;
    for (agency, fact_id) in superseded {
        stmt.execute(params![now, agency, fact_id])?;
    }
    Ok(())
}

/// Make every one of `persons` known and return the `person_id` of each (issue 16: one search of the random-keyed
/// `persons (person_key)` index per person, then appends). The others are inserted with the next `person_id`s, in
/// the order given (the writer lock is held, so `MAX(person_id)` cannot move under us). A known person is left as it
/// is, except that a person known only from an audited read gets its encrypted ID number. A key given twice is
/// inserted once.
pub(super) fn insert_persons<P: std::borrow::Borrow<NewPerson>>(
    db: &Connection,
    persons: &[P],
    now: i64,
) -> Result<PersonIds, StoreError> {
    let mut ids = PersonIds::with_capacity_and_hasher(persons.len(), WriteHasher::default());
    let mut fresh: Vec<&NewPerson> = Vec::new();
    {
        let mut find = db.prepare("SELECT person_id, id_cipher IS NULL FROM persons WHERE person_key = ?1")?;
        let mut fill =
            db.prepare("UPDATE persons SET id_cipher = ?1, id_masked = ?2, key_version = 1 WHERE person_id = ?3")?;
        for p in persons.iter().map(|p| p.borrow()) {
            if ids.contains_key(&p.person_key) {
                continue;
            }
            let found = find
                .query_row([p.person_key.as_bytes().as_slice()], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?)))
                .optional()?;
            match found {
                Some((id, probed)) => {
                    if probed {
                        fill.execute(params![p.id_cipher, p.id_masked, id])?;
                    }
                    ids.insert(p.person_key, id);
                }
                None => {
                    ids.insert(p.person_key, 0); // numbered below
                    fresh.push(p);
                }
            }
        }
    }
    if fresh.is_empty() {
        return Ok(ids);
    }
    let mut next: i64 = db.query_row("SELECT COALESCE(MAX(person_id), 0) FROM persons", [], |r| r.get(0))?;
    let mut insert = db.prepare(
        "INSERT INTO persons (person_id, person_key, id_cipher, id_masked, key_version, created_at) \
         VALUES (?1, ?2, ?3, ?4, 1, ?5)",
    )?;
    for p in fresh {
        next += 1;
        insert.execute(params![next, p.person_key.as_bytes().as_slice(), p.id_cipher, p.id_masked, now])?;
        ids.insert(p.person_key, next);
    }
    Ok(ids)
}

/// The largest `rowid` of `facts` (0 when empty): the versions written after it are the ones of this transaction.
pub(super) fn last_fact_row(db: &Connection) -> Result<i64, StoreError> {
    Ok(db.query_row("SELECT COALESCE(MAX(rowid), 0) FROM facts", [], |r| r.get(0))?)
}

/// Insert fact versions, `(is_current, fact)` per row in write order (a record written twice in one batch is stored
/// once superseded, once current), each fact's person by `ids` (every fact's person must be there, or nothing is
/// written: corrupt `persons`). The row's values are bound in place ([`Borrowed`]): rusqlite would copy every text
/// and blob into a fresh allocation per row (4.3 % of the hub's samples in P1 at 1,000,000 facts, 2026-12-08).
pub(super) fn insert_fact_rows(
    db: &Connection,
    rows: &[(bool, &PreparedFact)],
    ids: &PersonIds,
    now: i64,
) -> Result<(), StoreError> {
    let mut person_ids = Vec::with_capacity(rows.len());
    for (_, f) in rows {
        person_ids.push(*ids.get(&f.person_key).ok_or_else(|| corrupt("persons", "a fact's person has no person_id"))?);
    }
    let mut stmt = Borrowed::prepare(
        db,
        "INSERT INTO facts (agency, fact_id, source_version, person_id, kind, division_code, valid_from, valid_to, \
         program, status, residence, benefit_fen, payload, content_hash, recorded_at, superseded_at, is_current) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?;
    use Value::{Blob, Int, Null, Text};
    let text = |v: Option<&'static str>| v.map_or(Null, Text);
    for ((current, f), person_id) in rows.iter().zip(person_ids) {
        let (program, status, residence, benefit_fen) = match &f.fact.payload {
            Payload::Assistance(a) => (
                a.program.map(|p| p.as_str()),
                a.status.map(|s| s.as_str()),
                a.residence.map(|r| r.as_str()),
                a.monthly_benefit.map(crate::store::column_fen),
            ),
            _ => (None, None, None, None),
        };
        let valid_from = f.fact.valid_from.to_string();
        let valid_to = f.fact.valid_to.map(|d| d.to_string());
        stmt.execute(&[
            Text(f.agency.as_str()),
            Text(&f.fact.fact_id),
            Int(f.fact.source_version as i64),
            Int(person_id),
            Text(f.fact.payload.kind().as_str()),
            Text(f.fact.division_code.as_str()),
            Text(&valid_from),
            valid_to.as_deref().map_or(Null, Text),
            text(program),
            text(status),
            text(residence),
            benefit_fen.map_or(Null, Int),
            Text(&f.payload_json),
            Blob(f.content_hash.as_slice()),
            Int(now),
            if *current { Null } else { Int(now) },
            Int(*current as i64),
        ])?;
    }
    Ok(())
}

/// A value bound to a [`Borrowed`] statement.
#[derive(Clone, Copy)]
pub(super) enum Value<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// A prepared statement run once per row with its values bound in place: SQLite is told the text and blob values
/// are static (`SQLITE_STATIC`, <https://sqlite.org/c3ref/bind_blob.html>), so it reads them where they are instead
/// of copying each into an allocation of its own, as rusqlite's binding does (`SQLITE_TRANSIENT`). Sound because
/// [`Borrowed::execute`] binds, steps to the end, resets and clears every binding before it returns: no pointer to
/// the caller's values outlives the call. Finalized when dropped.
pub(super) struct Borrowed<'c> {
    stmt: *mut rusqlite::ffi::sqlite3_stmt,
    db: &'c Connection,
    /// The statement's parameter count: [`Borrowed::execute`] takes exactly this many values.
    params: usize,
}

impl<'c> Borrowed<'c> {
    /// Prepare `sql` (one statement) on `db`.
    pub(super) fn prepare(db: &'c Connection, sql: &str) -> Result<Self, StoreError> {
        use rusqlite::ffi;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: `db.handle()` is the open handle of a connection borrowed for `'c`; SQLite copies nothing from `sql`
        // after it returns, and `stmt` is finalized in `drop`, before the borrow ends.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.handle(),
                sql.as_ptr().cast(),
                sql.len() as std::ffi::c_int,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK || stmt.is_null() {
            return Err(Self::error_of(db, rc).into());
        }
        // SAFETY: `stmt` is the live statement just prepared.
        let params = unsafe { ffi::sqlite3_bind_parameter_count(stmt) } as usize;
        Ok(Self { stmt, db, params })
    }

    /// Bind `values` to the parameters `?1 ..`, run the statement to its end and make it ready for the next row.
    /// Errors: the statement's SQLite error (a constraint, a full disk, a busy database), as rusqlite reports it;
    /// rusqlite's `InvalidParameterCount` when `values` is not one value per parameter (nothing run), and
    /// `ExecuteReturnedResults` for a statement that returns rows (this runs statements that write, not queries).
    pub(super) fn execute(&mut self, values: &[Value<'_>]) -> Result<(), StoreError> {
        use rusqlite::ffi;
        if values.len() != self.params {
            return Err(rusqlite::Error::InvalidParameterCount(values.len(), self.params).into());
        }
        const EMPTY: &[u8] = b"\0";
        let mut rc = ffi::SQLITE_OK;
        // SAFETY: `self.stmt` is a live prepared statement of `self.db`. The text and blob pointers stay valid until
        // `sqlite3_clear_bindings` below, since `values` is borrowed for this whole call; an empty value points at a
        // static byte, as SQLite wants a non-null pointer for an empty (not NULL) text or blob.
        unsafe {
            for (i, v) in values.iter().enumerate() {
                let col = i as std::ffi::c_int + 1;
                rc = match *v {
                    Value::Null => ffi::sqlite3_bind_null(self.stmt, col),
                    Value::Int(n) => ffi::sqlite3_bind_int64(self.stmt, col, n),
                    Value::Text(t) => {
                        let ptr = if t.is_empty() { EMPTY.as_ptr() } else { t.as_ptr() };
                        let len = t.len() as ffi::sqlite3_uint64;
                        ffi::sqlite3_bind_text64(
                            self.stmt,
                            col,
                            ptr.cast(),
                            len,
                            ffi::SQLITE_STATIC(),
                            ffi::SQLITE_UTF8 as u8,
                        )
                    }
                    Value::Blob(b) => {
                        let ptr = if b.is_empty() { EMPTY.as_ptr() } else { b.as_ptr() };
                        ffi::sqlite3_bind_blob64(
                            self.stmt,
                            col,
                            ptr.cast(),
                            b.len() as ffi::sqlite3_uint64,
                            ffi::SQLITE_STATIC(),
                        )
                    }
                };
                if rc != ffi::SQLITE_OK {
                    break;
                }
            }
            let mut returned_rows = false;
            if rc == ffi::SQLITE_OK {
                rc = match ffi::sqlite3_step(self.stmt) {
                    ffi::SQLITE_DONE => ffi::SQLITE_OK,
                    ffi::SQLITE_ROW => {
                        returned_rows = true;
                        ffi::SQLITE_OK
                    }
                    _ => ffi::sqlite3_reset(self.stmt),
                };
            }
            // The error, if any, is read before the reset below clears it.
            let err = (rc != ffi::SQLITE_OK).then(|| Self::error_of(self.db, rc));
            ffi::sqlite3_reset(self.stmt);
            ffi::sqlite3_clear_bindings(self.stmt);
            match err {
                Some(e) => Err(e.into()),
                None if returned_rows => Err(rusqlite::Error::ExecuteReturnedResults.into()),
                None => Ok(()),
            }
        }
    }

    /// The connection's current error for result code `rc`, as rusqlite reports one.
    fn error_of(db: &Connection, rc: std::ffi::c_int) -> rusqlite::Error {
        // SAFETY: the handle is open; `sqlite3_errmsg` returns a NUL-terminated string owned by SQLite, copied here.
        let msg = unsafe {
            let p = rusqlite::ffi::sqlite3_errmsg(db.handle());
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rc), msg)
    }
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        // SAFETY: `self.stmt` was prepared on `self.db`, which is still open (borrowed), and is finalized once.
        unsafe {
            rusqlite::ffi::sqlite3_finalize(self.stmt);
        }
    }
}

/// The current `assistance` and `student` facts in force on `as_of` (`YYYY-MM-DD`) of the persons `keys`, each with
/// its payload projected to its `program` and `status` columns (`FactReads::comparison_facts_of_persons`; columns
/// `COMPARISON_COLUMNS_F`). One prepared statement, run once per distinct key in key order (the searches of the
/// random-keyed `persons (person_key)` index then walk it in its own order); `facts_current_person (person_id, kind)`
/// fetches only the rows of the two kinds. Reads only; the caller holds the read transaction.
pub(super) fn comparison_facts(
    db: &Connection,
    keys: &[PersonKey],
    as_of: &str,
) -> Result<Vec<crate::store::StoredFact>, StoreError> {
    use crate::domain::fact::PayloadKind;
    let mut sorted: Vec<&PersonKey> = keys.iter().collect();
    sorted.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    sorted.dedup();
    let mut stmt = db.prepare(&format!(
        "SELECT {} FROM persons p JOIN facts f ON f.person_id = p.person_id \
         WHERE p.person_key = ?1 AND f.is_current = 1 AND f.kind IN ('{}', '{}') \
         AND f.valid_from <= ?2 AND (f.valid_to IS NULL OR f.valid_to > ?2)",
        crate::store::sql::COMPARISON_COLUMNS_F,
        PayloadKind::Assistance.as_str(),
        PayloadKind::Student.as_str(),
    ))?;
    let date = |s: &str| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| corrupt("facts", format!("date {s}: {e}")))
    };
    let mut out = Vec::new();
    for key in sorted {
        let mut rows = stmt.query(params![key.as_bytes().as_slice(), as_of])?;
        while let Some(r) = rows.next()? {
            let kind_code = r.get_ref(4)?.as_str().map_err(|e| corrupt("facts", e.to_string()))?;
            let kind =
                PayloadKind::parse(kind_code).ok_or_else(|| corrupt("facts", format!("unknown kind {kind_code}")))?;
            let program = r.get_ref(8)?.as_str_or_null().map_err(|e| corrupt("facts", e.to_string()))?;
            let status = r.get_ref(10)?.as_str_or_null().map_err(|e| corrupt("facts", e.to_string()))?;
            let valid_to = r.get_ref(7)?.as_str_or_null().map_err(|e| corrupt("facts", e.to_string()))?;
            out.push(crate::store::StoredFact {
                agency: r.get(0)?,
                fact_id: r.get(1)?,
                source_version: r.get::<_, i64>(2)? as u64,
                person_key: *key,
                division_code: r.get(5)?,
                valid_from: date(r.get_ref(6)?.as_str().map_err(|e| corrupt("facts", e.to_string()))?)?,
                valid_to: valid_to.map(date).transpose()?,
                payload: crate::store::sql::comparison_payload(kind, program, status)?,
                recorded_at: crate::store::from_micros(r.get(9)?),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{Borrowed, Value};
    use crate::store::StoreError;
    use rusqlite::Connection;

    /// What is bound in place is what is stored: empty text and blob stay empty (not NULL), NULL stays NULL, and
    /// values whose owner is dropped after the call were read during it. A constraint failure is the statement's
    /// SQLite error, rusqlite's shape, with SQLite's message; the statement is usable again afterwards. A wrong
    /// number of values, or a statement that returns rows, is refused (rusqlite's errors for the same misuse).
    #[test]
    fn borrowed_binding_stores_the_values_and_reports_sqlite_errors() {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE t (k TEXT NOT NULL UNIQUE, t TEXT, b BLOB, n INTEGER)").unwrap();
        let mut stmt = Borrowed::prepare(&db, "INSERT INTO t (k, t, b, n) VALUES (?1, ?2, ?3, ?4)").unwrap();
        for (i, k) in ["a", "b"].into_iter().enumerate() {
            let text = format!("{k}-text-{i}");
            let blob = vec![i as u8, 0xff];
            stmt.execute(&[Value::Text(k), Value::Text(&text), Value::Blob(&blob), Value::Int(i as i64 - 1)]).unwrap();
        }
        stmt.execute(&[Value::Text("c"), Value::Text(""), Value::Blob(&[]), Value::Null]).unwrap();
        let dup = stmt.execute(&[Value::Text("a"), Value::Null, Value::Null, Value::Null]);
        match dup {
            Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, Some(msg)))) => {
                assert_eq!(e.code, rusqlite::ErrorCode::ConstraintViolation);
                assert!(msg.contains("UNIQUE") && msg.contains("t.k"), "{msg}");
            }
            other => panic!("expected a UNIQUE failure, got {other:?}"),
        }
        stmt.execute(&[Value::Text("d"), Value::Null, Value::Null, Value::Int(7)]).unwrap();
        // Three values for four parameters: refused before anything runs (no row "e").
        assert!(matches!(
            stmt.execute(&[Value::Text("e"), Value::Null, Value::Null]),
            Err(StoreError::Sqlite(rusqlite::Error::InvalidParameterCount(3, 4)))
        ));
        drop(stmt);
        let mut query = Borrowed::prepare(&db, "SELECT k FROM t WHERE k = ?1").unwrap();
        assert!(matches!(
            query.execute(&[Value::Text("a")]),
            Err(StoreError::Sqlite(rusqlite::Error::ExecuteReturnedResults))
        ));
        drop(query);
        type Row = (String, Option<String>, Option<Vec<u8>>, Option<i64>);
        let rows: Vec<Row> = db
            .prepare("SELECT k, t, b, n FROM t ORDER BY k")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                ("a".into(), Some("a-text-0".into()), Some(vec![0, 0xff]), Some(-1)),
                ("b".into(), Some("b-text-1".into()), Some(vec![1, 0xff]), Some(0)),
                ("c".into(), Some(String::new()), Some(vec![]), None),
                ("d".into(), None, None, Some(7)),
            ]
        );
    }
}
