//! Databases made by release 0009 migrate in place, on both backends, with nothing lost (issue 16 item 5).
//!
//! `tests/fixtures/release-0009/` holds a database made by release 0009 (migrations 0001–0009) through its gRPC API,
//! with the answers clients got from it:
//!
//! - `sqlite.db`: the SQLite database (one self-contained file, `VACUUM INTO`);
//! - `postgres.sql`: the PostgreSQL database as plain SQL (`pg_dump --no-owner --no-privileges --inserts`, with the
//!   `\restrict`/`\unrestrict` psql meta-commands of recent pg_dump removed), loaded into a fresh database here;
//! - `data-key.b64`: the data key both were made with (a test key, nothing else uses it);
//! - `answers-sqlite.json`, `answers-postgres.json`: what a client gets from each (see [`observe`]).
//!
//! [`a_release_0009_database_migrates_and_answers_as_before`] starts the hub of *this* release on a copy of the fixture
//! (its start applies every migration the fixture lacks) and asks the same questions again: VerifySnapshot of the
//! frozen quarters, VerifyAuditChain, the whole audit log, GetRecipient as of old dates as several agencies,
//! ListRecipients (as sets: the listing order changed in 0010), ListAccessEvents by person, WatchChanges resumed from old cursors, fund reports, warnings,
//! medical findings, quarterly summaries and monthly reports; and it freezes the quarter the fixture left open
//! (2023Q4), which reads every stored fact, person and finding again. Every answer must be what release 0009 gave.
//! [`a_failed_migration_leaves_the_database_as_it_was`] makes the pending migrations fail at their last step and
//! checks that the database is exactly as before (schema and every row).
//!
//! Regenerating — only ever with the code of release 0009 (the commit that added this file, or the `fixture` branch
//! at it), never with a later release: the fixture stands for the databases release 0009 left in the field, and a
//! fixture made by a later release would prove nothing about migrating them (its answers would also silently take
//! over whatever the later release changed). With `DOUDI_TEST_DATABASE_URL` set for the PostgreSQL half:
//!
//! ```text
//! cargo test --test api    upgrade::make_release_0009_fixture -- --ignored   # sqlite.db, answers-sqlite.json
//! cargo test --test api_pg upgrade::make_release_0009_fixture -- --ignored   # postgres.sql, answers-postgres.json
//! ```
//!
//! (`pg_dump` must be on PATH and talk to the server.) The generator keeps `data-key.b64` when it exists.
//!
//! What is compared, and what is not: every answer is recorded as JSON of the fields release 0009's messages have
//! (fields added later are not in the fixture's answers and are not compared). The check's own reads append audit
//! events, so the answers are taken in a fixed order, starting with VerifyAuditChain and the full audit log before any
//! audited read; the events the check itself appends are compared by position, agency, method, purpose and number of
//! persons, without their instant and hash (which depend on when the check runs) or outcome text (the running
//! release's wording); the chain's head hash after the check's reads is left out for the same reason. Page tokens are
//! sealed with a random nonce: only whether there is a next page is compared, and the pages are followed. A refusal
//! is compared by its gRPC code (the messages of the refusals asked here hold nothing from the database).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use doudi::client::Clients;
use doudi::grpc::pb;
use macro_rules_attribute::apply;
use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::support::*;

const HUAN: &str = "621022";
const HUAN_VILLAGE: &str = "621022101203";
const XIFENG: &str = "621002";
const XIFENG_VILLAGE: &str = "621002001001";
const QINGCHENG: &str = "621021";
const HESHUI: &str = "621024";
const NINGXIAN: &str = "621026";
const ZHENYUAN: &str = "621027";

/// The newest migration release 0009 has.
const FIXTURE_MIGRATION: i64 = 9;

const PURPOSE: &str = "upgrade check";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-0009")
}

fn backend() -> &'static str {
    if crate::ON_POSTGRES { "postgres" } else { "sqlite" }
}

fn answers_path() -> PathBuf {
    fixture_dir().join(format!("answers-{}.json", backend()))
}

fn data_key() -> String {
    std::fs::read_to_string(fixture_dir().join("data-key.b64")).expect("the fixture's data key").trim().to_owned()
}

// ---------------------------------------------------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------------------------------------------------

/// A copy of the fixture on this backend: a file in `dir` (SQLite) or a fresh database loaded from the dump; its URL.
async fn fixture_copy(dir: &Path) -> String {
    if crate::ON_POSTGRES {
        let url = postgres::fresh_database().await;
        let dump = std::fs::read_to_string(fixture_dir().join("postgres.sql")).expect("postgres.sql");
        // Plain SQL; psql meta-commands (none are kept, but a line starting with a backslash would be one) skipped.
        let sql: String = dump.lines().filter(|l| !l.starts_with('\\')).flat_map(|l| [l, "\n"]).collect();
        // A connection of its own: the dump empties search_path for its session.
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut db).await.expect("loading postgres.sql");
        db.close().await.unwrap();
        url
    } else {
        let path = dir.join("hub.db");
        std::fs::copy(fixture_dir().join("sqlite.db"), &path).expect("sqlite.db");
        format!("sqlite://{}", path.display())
    }
}

/// A hub of this release on `url` with the fixture's data key (its start applies the pending migrations).
async fn hub_on(url: String) -> TestApp {
    let key = data_key();
    spawn_app_on(
        Some(url),
        |c| {
            c.data_key = Some(key.into());
            // The watches below stop at the first heartbeat after the catch-up (it names the head).
            c.watch_heartbeat_secs = 1;
        },
        |_, _| {},
    )
    .await
}

#[apply(e2e!)]
#[tokio::test]
async fn a_release_0009_database_migrates_and_answers_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let url = fixture_copy(dir.path()).await;
    let app = hub_on(url.clone()).await;
    let got = observe(&app).await;
    app.stop().await;
    assert_eq!(newest_applied(&url).await, newest_migration().await, "the start applied every migration");
    let recorded: Vec<Answer> =
        serde_json::from_str(&std::fs::read_to_string(answers_path()).expect("the recorded answers")).unwrap();
    compare(&recorded, &got);
}

/// One question and the answer a client got.
#[derive(serde::Serialize, serde::Deserialize, Clone)]
struct Answer {
    q: String,
    a: Value,
}

fn compare(recorded: &[Answer], got: &[Answer]) {
    let qs = |v: &[Answer]| v.iter().map(|a| a.q.clone()).collect::<Vec<_>>();
    assert_eq!(qs(got), qs(recorded), "the same questions");
    let mut wrong = Vec::new();
    for (r, g) in recorded.iter().zip(got) {
        if r.a != g.a {
            let (r_text, g_text) =
                (serde_json::to_string_pretty(&r.a).unwrap(), serde_json::to_string_pretty(&g.a).unwrap());
            let (r_lines, g_lines): (Vec<&str>, Vec<&str>) = (r_text.lines().collect(), g_text.lines().collect());
            let at = r_lines.iter().zip(&g_lines).position(|(a, b)| a != b).unwrap_or(r_lines.len().min(g_lines.len()));
            let window = |l: &[&str]| l[at.saturating_sub(6)..(at + 4).min(l.len())].join("\n");
            wrong.push(format!(
                "{}: differs at line {}\n--- release 0009 answered:\n{}\n--- now:\n{}",
                r.q,
                at + 1,
                window(&r_lines),
                window(&g_lines)
            ));
        }
    }
    assert!(wrong.is_empty(), "{} of {} answers differ:\n\n{}", wrong.len(), recorded.len(), wrong.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------------------------------
// A failed migration
// ---------------------------------------------------------------------------------------------------------------------

/// Makes every migration numbered `from` or later fail at its very end: sqlx records an applied migration in
/// `_sqlx_migrations` inside the migration's own transaction, after running its SQL, so refusing that row fails the
/// migration once all of its statements have run.
async fn refuse_migrations_from(url: &str, from: i64) {
    if crate::ON_POSTGRES {
        let mut db = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE FUNCTION test_refuse_migration() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               RAISE EXCEPTION 'test: migration % refused', NEW.version; END $$; \
             CREATE TRIGGER test_refuse_migration BEFORE INSERT ON _sqlx_migrations FOR EACH ROW \
               WHEN (NEW.version >= {from}) EXECUTE FUNCTION test_refuse_migration();"
        )))
        .execute(&mut db)
        .await
        .unwrap();
        db.close().await.unwrap();
    } else {
        let mut db = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE TRIGGER test_refuse_migration BEFORE INSERT ON _sqlx_migrations WHEN NEW.version >= {from} \
             BEGIN SELECT RAISE(ABORT, 'test: migration refused'); END;"
        )))
        .execute(&mut db)
        .await
        .unwrap();
        db.close().await.unwrap();
    }
}

/// Everything in the database: its schema (tables, columns, indexes, constraints, triggers) and every row of every
/// table, as sorted text.
async fn everything(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    if crate::ON_POSTGRES {
        let mut db = sqlx::PgConnection::connect(url).await.unwrap();
        let schema: Vec<(String,)> = sqlx::query_as(
            "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' \
                    || COALESCE(column_default, '') FROM information_schema.columns WHERE table_schema = 'public' \
             UNION ALL SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public' \
             UNION ALL SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' \
                    || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace \
             UNION ALL SELECT 'trigger ' || tgrelid::regclass::text || ' ' || tgname FROM pg_trigger \
                    WHERE NOT tgisinternal",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        out.extend(schema.into_iter().map(|(s,)| s));
        let tables: Vec<(String,)> =
            sqlx::query_as("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                .fetch_all(&mut db)
                .await
                .unwrap();
        for (t,) in tables {
            let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT r::text FROM \"{t}\" r")))
                .fetch_all(&mut db)
                .await
                .unwrap();
            out.extend(rows.into_iter().map(|(r,)| format!("{t}: {r}")));
        }
        db.close().await.unwrap();
    } else {
        let mut db = sqlx::SqliteConnection::connect(url).await.unwrap();
        let schema: Vec<(String, String, String)> =
            sqlx::query_as("SELECT type, name, COALESCE(sql, '') FROM sqlite_master").fetch_all(&mut db).await.unwrap();
        for (kind, name, sql) in &schema {
            out.push(format!("{kind} {name} {sql}"));
            if kind != "table" || name.starts_with("sqlite_") {
                continue;
            }
            let columns: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM pragma_table_info(?)").bind(name).fetch_all(&mut db).await.unwrap();
            let row = columns.iter().map(|(c,)| format!("quote(\"{c}\")")).collect::<Vec<_>>().join(" || ',' || ");
            let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {row} FROM \"{name}\"")))
                .fetch_all(&mut db)
                .await
                .unwrap();
            out.extend(rows.into_iter().map(|(r,)| format!("{name}: {r}")));
        }
        db.close().await.unwrap();
    }
    out.sort();
    out
}

/// The newest migration of this release (a fresh database migrated by it).
async fn newest_migration() -> i64 {
    let dir = tempfile::tempdir().unwrap();
    let url = test_database_url(dir.path()).await;
    let store = doudi::store::Store::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    let v = newest_applied(&url).await;
    store.close().await;
    v
}

async fn newest_applied(url: &str) -> i64 {
    const SQL: &str = "SELECT MAX(version) FROM _sqlx_migrations";
    if crate::ON_POSTGRES {
        let mut db = sqlx::PgConnection::connect(url).await.unwrap();
        let v: i64 = sqlx::query_scalar(SQL).fetch_one(&mut db).await.unwrap();
        db.close().await.unwrap();
        v
    } else {
        let mut db = sqlx::SqliteConnection::connect(url).await.unwrap();
        let v: i64 = sqlx::query_scalar(SQL).fetch_one(&mut db).await.unwrap();
        db.close().await.unwrap();
        v
    }
}

/// Start-up migration (`Store::migrate`, what the hub runs before it serves) on `url` with the migrations from
/// `refused` on made to fail at their end: when one is pending, it fails and the database is exactly as before; when
/// none is, it succeeds and changes nothing. Returns whether one was pending.
async fn migrate_with_failure(url: &str, refused: i64) -> bool {
    refuse_migrations_from(url, refused).await;
    let before = everything(url).await;
    let pending = newest_migration().await >= refused;
    let store = doudi::store::Store::open(url).await.unwrap();
    let r = store.migrate().await;
    store.close().await;
    if pending {
        let e = r.expect_err("the injected failure");
        assert!(e.to_string().contains("refused"), "the injected failure, not another: {e}");
    } else {
        r.expect("nothing pending: nothing to fail");
    }
    let after = everything(url).await;
    if after != before {
        let gone: Vec<&String> = before.iter().filter(|l| !after.contains(l)).take(10).collect();
        let new: Vec<&String> = after.iter().filter(|l| !before.contains(l)).take(10).collect();
        panic!("the failed migration changed the database:\nno longer there: {gone:#?}\nnew: {new:#?}");
    }
    assert_eq!(newest_applied(url).await, refused - 1);
    pending
}

/// A failed migration leaves the database as it was: the migrations after release 0009 failing at their last step on
/// the fixture (there are none on release 0009 itself, where this only checks that starting changes nothing), and
/// migration 0009 failing on a database made by migrations 0001–0008 (always pending, so the rollback is always
/// exercised). Afterwards the fixture, its failure no longer injected, migrates and answers as release 0009 did.
#[apply(e2e!)]
#[tokio::test]
async fn a_failed_migration_leaves_the_database_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let old = test_database_url(dir.path()).await;
    let store = doudi::store::Store::open(&old).await.unwrap();
    store.migrate_to(FIXTURE_MIGRATION - 1).await.unwrap();
    store.close().await;
    assert!(migrate_with_failure(&old, FIXTURE_MIGRATION).await, "0009 is pending on a 0008 database");

    let fixture_dir = tempfile::tempdir().unwrap();
    let url = fixture_copy(fixture_dir.path()).await;
    let pending = migrate_with_failure(&url, FIXTURE_MIGRATION + 1).await;
    if !pending {
        eprintln!("no migration after {FIXTURE_MIGRATION} in this release: nothing pending on the fixture");
    }
    // Retried without the injected failure, the migration goes through and loses nothing.
    if crate::ON_POSTGRES {
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("DROP TRIGGER test_refuse_migration ON _sqlx_migrations; DROP FUNCTION test_refuse_migration();")
            .execute(&mut db)
            .await
            .unwrap();
        db.close().await.unwrap();
    } else {
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("DROP TRIGGER test_refuse_migration").execute(&mut db).await.unwrap();
        db.close().await.unwrap();
    }
    let app = hub_on(url).await;
    let got = observe(&app).await;
    app.stop().await;
    let recorded: Vec<Answer> = serde_json::from_str(&std::fs::read_to_string(answers_path()).unwrap()).unwrap();
    compare(&recorded, &got);
}

// ---------------------------------------------------------------------------------------------------------------------
// The questions
// ---------------------------------------------------------------------------------------------------------------------

/// The fixture's persons: (name, ID number).
fn persons() -> Vec<(&'static str, String)> {
    vec![
        ("P01", id(HUAN, (1958, 4, 1), 1)),
        ("P02", id(HUAN, (1965, 5, 2), 2)),
        ("P03", id(HUAN, (2012, 6, 3), 3)),
        ("P04", id(XIFENG, (1970, 7, 4), 4)),
        ("P05", id(QINGCHENG, (1940, 8, 5), 5)),
        ("P06", id(NINGXIAN, (1962, 9, 6), 6)),
        ("P07", id(HUAN, (1963, 10, 7), 7)),
        ("P08", id(ZHENYUAN, (2010, 11, 8), 8)),
        ("P09", id(XIFENG, (1975, 12, 9), 9)),
        ("P10", id(HUAN, (2014, 1, 10), 10)),
        ("P11", id(HESHUI, (1968, 2, 11), 11)),
        ("P12", id(XIFENG, (1980, 3, 12), 12)),
    ]
}

fn person(name: &str) -> String {
    persons().into_iter().find(|(n, _)| *n == name).unwrap().1
}

struct Record(Vec<Answer>);

impl Record {
    fn add(&mut self, q: impl Into<String>, a: Value) {
        let q = q.into();
        assert!(self.0.iter().all(|x| x.q != q), "question {q} asked twice");
        self.0.push(Answer { q, a });
    }
}

fn result<T>(r: Result<T, tonic::Status>, f: impl FnOnce(T) -> Value) -> Value {
    match r {
        Ok(v) => f(v),
        // The code only: the messages of the refusals asked here hold nothing from the database (the masked ID number
        // and the date come from the request), and their wording is the running release's.
        Err(s) => json!({ "error": format!("{:?}", s.code()) }),
    }
}

/// Ask every question, in a fixed order, of a hub on (a copy of) the fixture. The order matters: the audit chain and
/// log are read before anything the check does appends to them.
async fn observe(app: &TestApp) -> Vec<Answer> {
    let mut rec = Record(Vec::new());
    let mut civil = app.client("civil_affairs").await;
    let mut lg = app.client("leading_group").await;

    // The audit chain and the whole log as the fixture holds them (verifying and an unfiltered listing are not audited).
    let chain = lg.audit.verify_audit_chain(pb::VerifyAuditChainRequest {}).await.unwrap().into_inner();
    let fixture_events = chain.events_checked;
    rec.add("VerifyAuditChain before any read", audit_chain(&chain, true));
    let log =
        access_events(&mut civil, pb::ListAccessEventsRequest { page_size: 25, ..Default::default() }, fixture_events)
            .await;
    rec.add("ListAccessEvents: the whole log, pages of 25", log);
    let by_agency = access_events(
        &mut civil,
        pb::ListAccessEventsRequest { agency: "education".into(), page_size: 4, ..Default::default() },
        fixture_events,
    )
    .await;
    rec.add("ListAccessEvents agency=education, pages of 4", by_agency);

    // Snapshots: headers, verification, summaries (aggregates, not audited).
    let list = lg.coordination.list_snapshots(pb::ListSnapshotsRequest {}).await.unwrap().into_inner();
    rec.add("ListSnapshots", json!(list.snapshots.iter().map(snapshot).collect::<Vec<_>>()));
    for quarter in ["2023Q1", "2023Q2", "2023Q3", "2023Q4"] {
        let v = lg.coordination.verify_snapshot(pb::VerifySnapshotRequest { quarter: quarter.into() }).await;
        rec.add(format!("VerifySnapshot {quarter}"), result(v, |v| verify_snapshot(&v.into_inner())));
        let s = lg.coordination.get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: quarter.into() }).await;
        rec.add(
            format!("GetQuarterlySummary {quarter}"),
            result(s, |s| {
                let s = s.into_inner();
                // Section 11, `findings_by_agency` (issue 19, docs/findings.md), was added after release 0009: a field
                // added later, not in the fixture's answers, so not compared.
                let mut summary = s.summary.map(doudi::grpc::snapshot::struct_to_json);
                if let Some(Value::Object(m)) = &mut summary {
                    m.remove("findings_by_agency");
                    m.remove("medical_findings_by_agency");
                }
                json!({
                    "quarter": s.quarter,
                    "content_hash": s.content_hash,
                    "summary": summary,
                })
            }),
        );
    }
    for month in ["2023-03", "2023-06", "2023-08"] {
        let r = lg.coordination.get_monthly_report(pb::GetMonthlyReportRequest { month: month.into() }).await;
        rec.add(
            format!("GetMonthlyReport {month}"),
            result(r, |r| {
                let r = r.into_inner();
                json!({ "month": r.month, "report": r.report.map(doudi::grpc::snapshot::struct_to_json) })
            }),
        );
    }

    // Fund reports (aggregates, not audited).
    for (month, program, as_of) in [
        ("2023-03", pb::FundProgram::RuralDibao, "2023-04-30"),
        ("2023-03", pb::FundProgram::UrbanDibao, "2023-04-30"),
        ("2023-06", pb::FundProgram::Tekun, "2023-07-31"),
        ("2023-09", pb::FundProgram::RuralDibao, "2023-10-31"),
    ] {
        let r = lg
            .coordination
            .list_fund_reports(pb::ListFundReportsRequest {
                month: month.into(),
                program: program as i32,
                as_of: as_of.into(),
                include_history: true,
            })
            .await;
        rec.add(
            format!("ListFundReports {month} {program:?} as of {as_of}"),
            result(r, |r| fund_reports(&r.into_inner())),
        );
    }

    // From here on every read is audited.
    for (filter, as_of) in [
        (pb::WarningFilter::Unspecified, "2023-05-31"),
        (pb::WarningFilter::Open, "2023-09-30"),
        (pb::WarningFilter::Overdue, "2023-09-30"),
        (pb::WarningFilter::Closed, "2023-12-31"),
    ] {
        let r = civil
            .coordination
            .list_warnings(pb::ListWarningsRequest {
                filter: filter as i32,
                as_of: as_of.into(),
                purpose: PURPOSE.into(),
                ..Default::default()
            })
            .await;
        rec.add(format!("ListWarnings {filter:?} as of {as_of}"), result(r, |r| warnings(&r.into_inner())));
    }
    for (agency, include_resolved) in [("civil_affairs", true), ("medical_insurance", false)] {
        let mut c = app.client(agency).await;
        let r = c
            .medical
            .list_findings(pb::ListFindingsRequest { include_resolved, purpose: PURPOSE.into(), ..Default::default() })
            .await;
        rec.add(
            format!("ListFindings as {agency}, include_resolved={include_resolved}"),
            result(r, |r| {
                let r = r.into_inner();
                json!({
                    "findings": r.findings.iter().map(finding).collect::<Vec<_>>(),
                    "total_size": r.total_size,
                    "more_pages": !r.next_page_token.is_empty(),
                })
            }),
        );
    }

    // GetRecipient as of old dates: civil_affairs (sees everything) for every person, then other agencies.
    for (name, number) in persons() {
        for as_of in ["2023-02-15", "2023-05-15", "2023-08-15", "2023-11-15"] {
            let r = get_recipient(&mut civil, &number, as_of, 0).await;
            rec.add(format!("GetRecipient {name} as of {as_of} as civil_affairs"), r);
        }
    }
    let mut huan_office = app.client_in("civil_affairs", Some(HUAN)).await;
    let mut others = [
        ("medical_insurance", app.client("medical_insurance").await),
        ("human_resources", app.client("human_resources").await),
        ("education", app.client("education").await),
        ("disability_federation", app.client("disability_federation").await),
    ];
    for (agency, c) in &mut others {
        for name in ["P01", "P03", "P05", "P07", "P08", "P09", "P10"] {
            let r = get_recipient(c, &person(name), "2023-06-30", 0).await;
            rec.add(format!("GetRecipient {name} as of 2023-06-30 as {agency}"), r);
        }
    }
    for (name, as_of) in [("P02", "2023-06-30"), ("P02", "2023-09-30"), ("P01", "2023-06-30"), ("P04", "2023-06-30")] {
        let r = get_recipient(&mut huan_office, &person(name), as_of, 0).await;
        rec.add(format!("GetRecipient {name} as of {as_of} as civil_affairs of Huan"), r);
    }
    let r = get_recipient(&mut civil, &person("P01"), "2023-08-15", 1).await;
    rec.add("GetRecipient P01 as of 2023-08-15 as civil_affairs, pages of 1", r);

    // ListRecipients pages.
    for (who, division, program, as_of) in [
        ("civil_affairs", "", pb::Program::Unspecified, "2023-06-30"),
        ("civil_affairs", "621000", pb::Program::Dibao, "2023-03-31"),
        ("civil_affairs", "", pb::Program::Unspecified, "2023-12-31"),
        ("civil_affairs of Huan", HUAN, pb::Program::Unspecified, "2023-06-30"),
        ("education", "", pb::Program::Dibao, "2023-06-30"),
    ] {
        let c = match who {
            "civil_affairs" => &mut civil,
            "civil_affairs of Huan" => &mut huan_office,
            _ => &mut others[2].1,
        };
        let r = list_recipients(c, division, program, as_of).await;
        rec.add(
            format!("ListRecipients division={division:?} program={program:?} as of {as_of} as {who}, one page"),
            r,
        );
    }

    // WatchChanges resumed from old cursors.
    let r = watch(&mut civil, Some(3), vec![], "").await;
    rec.add("WatchChanges after cursor 3 as civil_affairs", r);
    let r = watch(&mut huan_office, Some(0), vec![], "").await;
    rec.add("WatchChanges after cursor 0 as civil_affairs of Huan", r);
    let r = watch(&mut others[2].1, Some(5), vec![pb::PayloadKind::Assistance], "").await;
    rec.add("WatchChanges after cursor 5 kinds=[ASSISTANCE] as education", r);
    let r = watch(&mut others[0].1, Some(10), vec![], XIFENG).await;
    rec.add("WatchChanges after cursor 10 division=Xifeng as medical_insurance", r);

    // Freezing the quarter the fixture left open (2023Q4) on the migrated database: every fact, person and finding as
    // the snapshot reads them, chained to the fixture's 2023Q3. The cutoff is now, so the header's cutoff and content
    // hash (which covers the cutoff) and the `agencies` section (freshness in seconds at the cutoff) are left out.
    let created = civil.coordination.create_snapshot(pb::CreateSnapshotRequest { quarter: "2023Q4".into() }).await;
    rec.add("CreateSnapshot 2023Q4", result(created, |s| fresh_snapshot(&s.into_inner())));
    let v = lg.coordination.verify_snapshot(pb::VerifySnapshotRequest { quarter: "2023Q4".into() }).await;
    rec.add(
        "VerifySnapshot 2023Q4 once created",
        result(v, |v| {
            let v = v.into_inner();
            json!({
                "valid": v.valid,
                "recomputed_equals_stored": v.recomputed_content_hash == v.stored_content_hash,
                "differences": v.differences,
                "snapshot": v.snapshot.as_ref().map(fresh_snapshot),
            })
        }),
    );
    let s = lg.coordination.get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: "2023Q4".into() }).await;
    rec.add(
        "GetQuarterlySummary 2023Q4 once created",
        result(s, |s| {
            let s = s.into_inner();
            let mut summary = s.summary.map(doudi::grpc::snapshot::struct_to_json).unwrap_or_default();
            summary["knowledge_cutoff"] = json!("(now)");
            summary["snapshot"]["content_hash"] = json!("(covers the cutoff)");
            // Added after release 0009 (issue 19): not compared, as above.
            if let Value::Object(m) = &mut summary {
                m.remove("findings_by_agency");
                m.remove("medical_findings_by_agency");
            }
            json!({ "quarter": s.quarter, "summary": summary })
        }),
    );

    // Who looked at these persons (the fixture's events and the ones this check appended above).
    for name in ["P01", "P02", "P05", "P11"] {
        let r = access_events(
            &mut civil,
            pb::ListAccessEventsRequest { id_number: person(name), purpose: PURPOSE.into(), ..Default::default() },
            fixture_events,
        )
        .await;
        rec.add(format!("ListAccessEvents by person {name}"), r);
    }

    // The chain after the check's own reads: still valid, with exactly the events the check appended.
    let after = lg.audit.verify_audit_chain(pb::VerifyAuditChainRequest {}).await.unwrap().into_inner();
    rec.add("VerifyAuditChain after the check's reads", audit_chain(&after, false));
    rec.0
}

async fn get_recipient(c: &mut Clients, id_number: &str, as_of: &str, page_size: i32) -> Value {
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let r = c
            .exchange
            .get_recipient(pb::GetRecipientRequest {
                id_number: id_number.into(),
                as_of: as_of.into(),
                purpose: PURPOSE.into(),
                page_size,
                page_token: token,
            })
            .await;
        let Ok(r) = r else { return result(r, |_| Value::Null) };
        let r = r.into_inner();
        token = r.next_page_token.clone();
        pages.push(recipient(&r));
        if token.is_empty() {
            break;
        }
    }
    if page_size == 0 { pages.remove(0) } else { json!(pages) }
}

async fn list_recipients(c: &mut Clients, division: &str, program: pb::Program, as_of: &str) -> Value {
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let r = c
            .exchange
            .list_recipients(pb::ListRecipientsRequest {
                division_code: division.into(),
                program: program as i32,
                as_of: as_of.into(),
                page_size: 100,
                page_token: token,
                purpose: PURPOSE.into(),
            })
            .await;
        let Ok(r) = r else { return result(r, |_| Value::Null) };
        let r = r.into_inner();
        // The order of a listing is not compared: release 0009 listed by person key, later releases list in arrival
        // order (migration 0010; page tokens carry the position). Every listing here fits one page, so the check's
        // own audit event of it touches the same persons whatever the order.
        let mut recipients: Vec<Value> = r.recipients.iter().map(recipient).collect();
        recipients.sort_by_key(|v| v.to_string());
        pages.push(json!({
            "recipients": recipients,
            "total_size": r.total_size,
            "omitted_count": r.omitted_count,
            "more_pages": !r.next_page_token.is_empty(),
        }));
        token = r.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    json!(pages)
}

/// Every page of a listing. Events appended by this check (seq after `fixture_events`) are compared without their
/// instant and hash (they depend on when the check runs) and outcome (its wording is the running release's).
async fn access_events(c: &mut Clients, req: pb::ListAccessEventsRequest, fixture_events: i64) -> Value {
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let r = c.audit.list_access_events(pb::ListAccessEventsRequest { page_token: token, ..req.clone() }).await;
        let Ok(r) = r else { return result(r, |_| Value::Null) };
        let r = r.into_inner();
        pages.push(json!({
            "events": r.events.iter().map(|e| access_event(e, fixture_events)).collect::<Vec<_>>(),
            "more_pages": !r.next_page_token.is_empty(),
        }));
        token = r.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    json!(pages)
}

/// Every change after `after` the caller may see, up to the head the hub had when the watch started: the watch
/// delivers them, then (idle for the 1 s heartbeat) says it has examined the log up to the head.
async fn watch(c: &mut Clients, after: Option<i64>, kinds: Vec<pb::PayloadKind>, division: &str) -> Value {
    let req = pb::WatchChangesRequest {
        after_cursor: after,
        kinds: kinds.into_iter().map(|k| k as i32).collect(),
        division_code: division.into(),
        purpose: PURPOSE.into(),
    };
    let mut w = match c.exchange.watch_changes(req).await {
        Ok(w) => w.into_inner(),
        Err(s) => return result(Err::<(), _>(s), |_| Value::Null),
    };
    let next = async |w: &mut tonic::Streaming<pb::Change>| {
        tokio::time::timeout(Duration::from_secs(10), w.message())
            .await
            .expect("a message within 10 s")
            .unwrap()
            .unwrap()
    };
    let start = next(&mut w).await;
    assert!(start.heartbeat, "the first message names the start: {start:?}");
    let mut changes = Vec::new();
    let head = loop {
        let m = next(&mut w).await;
        if m.heartbeat {
            break m.cursor;
        }
        changes.push(change(&m));
    };
    json!({ "start": start.cursor, "changes": changes, "head": head })
}

// ---------------------------------------------------------------------------------------------------------------------
// Answers as JSON: the fields release 0009's messages have
// ---------------------------------------------------------------------------------------------------------------------

/// An enum value by name (its number when this release does not know it).
fn en<E: TryFrom<i32> + std::fmt::Debug>(v: i32) -> Value {
    match E::try_from(v) {
        Ok(e) => json!(format!("{e:?}")),
        Err(_) => json!(v),
    }
}

fn ts(t: &Option<prost_types::Timestamp>) -> Value {
    match t {
        Some(t) => json!(
            chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                .unwrap_or_else(|| format!("{t:?}"))
        ),
        None => Value::Null,
    }
}

fn payload(p: &Option<pb::fact::Payload>) -> Value {
    use pb::fact::Payload as P;
    match p {
        None => Value::Null,
        Some(P::Assistance(a)) => json!({ "assistance": {
            "program": en::<pb::Program>(a.program),
            "residence": en::<pb::Residence>(a.residence),
            "rural_class": a.rural_class,
            "urban_mode": en::<pb::UrbanMode>(a.urban_mode),
            "support_mode": en::<pb::SupportMode>(a.support_mode),
            "household_id": a.household_id,
            "monthly_benefit": a.monthly_benefit,
            "status": en::<pb::AssistanceStatus>(a.status),
        }}),
        Some(P::Employment(e)) => json!({ "employment": { "status": en::<pb::EmploymentStatus>(e.status) }}),
        Some(P::Pension(p)) => json!({ "pension": {
            "enrolled": p.enrolled,
            "premium_paid_by_government": p.premium_paid_by_government,
            "receiving": p.receiving,
            "monthly_pension": p.monthly_pension,
        }}),
        Some(P::Student(s)) => {
            json!({ "student": { "stage": en::<pb::Stage>(s.stage), "school_code": s.school_code }})
        }
        Some(P::EducationAid(e)) => json!({ "education_aid": {
            "aid_type": en::<pb::AidType>(e.aid_type),
            "annual_amount": e.annual_amount,
        }}),
        Some(P::MedicalInsurance(m)) => json!({ "medical_insurance": {
            "scheme": en::<pb::Scheme>(m.scheme),
            "year": m.year,
            "premium_subsidy": en::<pb::PremiumSubsidy>(m.premium_subsidy),
            "subsidy_amount": m.subsidy_amount,
        }}),
        Some(P::Disability(d)) => json!({ "disability": {
            "category": en::<pb::DisabilityCategory>(d.category),
            "grade": d.grade,
            "certificate_no": d.certificate_no,
        }}),
        Some(P::DisabilitySubsidy(d)) => json!({ "disability_subsidy": {
            "living_subsidy": d.living_subsidy,
            "nursing_subsidy": d.nursing_subsidy,
        }}),
    }
}

fn fact(f: &pb::Fact) -> Value {
    json!({
        "fact_id": f.fact_id,
        "source_version": f.source_version,
        "id_number": f.id_number,
        "division_code": f.division_code,
        "valid_from": f.valid_from,
        "valid_to": f.valid_to,
        "payload": payload(&f.payload),
        "agency": f.agency,
        "recorded_at": ts(&f.recorded_at),
        "omitted_fields": f.omitted_fields,
    })
}

fn recipient(r: &pb::Recipient) -> Value {
    json!({
        "id_number": r.id_number,
        "as_of": r.as_of,
        "facts": r.facts.iter().map(fact).collect::<Vec<_>>(),
        "more_pages": !r.next_page_token.is_empty(),
    })
}

fn snapshot(s: &pb::Snapshot) -> Value {
    json!({
        "quarter": s.quarter,
        "as_of": s.as_of,
        "knowledge_cutoff": ts(&s.knowledge_cutoff),
        "created_by": s.created_by,
        "previous_quarter": s.previous_quarter,
        "previous_hash": s.previous_hash,
        "content_hash": s.content_hash,
        "section_hashes": s.section_hashes.iter().collect::<BTreeMap<_, _>>(),
    })
}

/// A snapshot taken by this check: its cutoff is now.
fn fresh_snapshot(s: &pb::Snapshot) -> Value {
    let mut v = snapshot(s);
    v["knowledge_cutoff"] = json!("(now)");
    v["content_hash"] = json!("(covers the cutoff)");
    v["section_hashes"]["agencies"] = json!("(freshness at the cutoff)");
    v
}

fn verify_snapshot(v: &pb::VerifySnapshotResponse) -> Value {
    json!({
        "valid": v.valid,
        "stored_content_hash": v.stored_content_hash,
        "recomputed_content_hash": v.recomputed_content_hash,
        "differences": v.differences,
        "snapshot": v.snapshot.as_ref().map(snapshot),
    })
}

/// `with_head`: the head hash is compared only before the check's own reads (after them it depends on when they ran).
fn audit_chain(v: &pb::VerifyAuditChainResponse, with_head: bool) -> Value {
    json!({
        "valid": v.valid,
        "events_checked": v.events_checked,
        "first_broken_seq": v.first_broken_seq,
        "reason": v.reason,
        "head_hash": if with_head { json!(v.head_hash) } else { json!("(appended by this check)") },
    })
}

fn access_event(e: &pb::AccessEvent, fixture_events: i64) -> Value {
    let mine = e.seq > fixture_events;
    json!({
        "seq": e.seq,
        "at": if mine { json!("(appended by this check)") } else { ts(&e.at) },
        "agency": e.agency,
        "division_code": e.division_code,
        "method": e.method,
        "purpose": e.purpose,
        "outcome": if mine { json!("(appended by this check)") } else { json!(e.outcome) },
        "person_count": e.person_count,
        "hash": if mine { json!("(appended by this check)") } else { json!(e.hash) },
    })
}

fn change(c: &pb::Change) -> Value {
    json!({
        "cursor": c.cursor,
        "heartbeat": c.heartbeat,
        "type": en::<pb::ChangeType>(c.r#type),
        "agency": c.agency,
        "kind": en::<pb::PayloadKind>(c.kind),
        "id_number_masked": c.id_number_masked,
        "fact": c.fact.as_ref().map(fact),
        "superseded_version": c.superseded_version,
        "committed_at": ts(&c.committed_at),
    })
}

fn fund_report(r: &pb::FundReport) -> Value {
    json!({
        "county_code": r.county_code,
        "month": r.month,
        "program": en::<pb::FundProgram>(r.program),
        "version": r.version,
        "disbursed_on": r.disbursed_on,
        "amount": r.amount,
        "recipients": r.recipients,
        "submitted_at": ts(&r.submitted_at),
        "submitted_by": r.submitted_by,
        "status": en::<pb::ReportStatus>(r.status),
    })
}

fn fund_reports(r: &pb::ListFundReportsResponse) -> Value {
    json!({
        "month": r.month,
        "tolerance": r.tolerance,
        "rows": r.rows.iter().map(|row| json!({
            "county_code": row.county_code,
            "county_name": row.county_name,
            "program": en::<pb::FundProgram>(row.program),
            "status": en::<pb::ReportStatus>(row.status),
            "latest": row.latest.as_ref().map(fund_report),
            "expected_amount": row.expected_amount,
            "finding": row.finding,
            "history": row.history.iter().map(fund_report).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn warnings(r: &pb::ListWarningsResponse) -> Value {
    let warning = |w: &pb::Warning| {
        json!({
            "warning_id": w.warning_id,
            "id_number": w.id_number,
            "division_code": w.division_code,
            "reason": en::<pb::WarningReason>(w.reason),
            "received_at": ts(&w.received_at),
            "state": en::<pb::WarningState>(w.state),
            "visit_due": w.visit_due,
            "decision_due": w.decision_due,
            "visited_on": w.visited_on,
            "decided_on": w.decided_on,
            "decision": en::<pb::WarningDecision>(w.decision),
            "decided_program": en::<pb::FundProgram>(w.decided_program),
            "closed_on": w.closed_on,
            "overdue": w.overdue,
            "visit_days_late": w.visit_days_late,
            "decision_days_late": w.decision_days_late,
            "visited_on_time": w.visited_on_time,
            "decided_on_time": w.decided_on_time,
            "as_of": w.as_of,
            "visit_due_provisional": w.visit_due_provisional,
            "decision_due_provisional": w.decision_due_provisional,
            "days_late_provisional": w.days_late_provisional,
            "deadline_history": w.deadline_history.iter().map(|d| json!({
                "changed_at": ts(&d.changed_at),
                "calendar_year": d.calendar_year,
                "calendar_version": d.calendar_version,
                "old_visit_due": d.old_visit_due,
                "old_decision_due": d.old_decision_due,
                "old_provisional": d.old_provisional,
                "new_visit_due": d.new_visit_due,
                "new_decision_due": d.new_decision_due,
                "new_provisional": d.new_provisional,
            })).collect::<Vec<_>>(),
        })
    };
    json!({
        "warnings": r.warnings.iter().map(warning).collect::<Vec<_>>(),
        "total_size": r.total_size,
        "more_pages": !r.next_page_token.is_empty(),
    })
}

fn finding(f: &pb::Finding) -> Value {
    json!({
        "code": en::<pb::FindingCode>(f.code),
        "settlement_id": f.settlement_id,
        "id_number": f.id_number,
        "person_key": f.person_key,
        "division_code": f.division_code,
        "settled_on": f.settled_on,
        "expected_amount": f.expected_amount,
        "actual_amount": f.actual_amount,
        "policy_version": f.policy_version,
        "agency_to_act": f.agency_to_act,
        "detected_at": ts(&f.detected_at),
        "resolved_at": ts(&f.resolved_at),
    })
}

// ---------------------------------------------------------------------------------------------------------------------
// The generator (release 0009 only: see the header)
// ---------------------------------------------------------------------------------------------------------------------

/// Makes the fixture of this backend from scratch: a hub with the fixture's data key on a fresh database, the scenario
/// pushed through gRPC, the database saved, then the answers of a hub on a copy of what was saved.
#[apply(e2e!)]
#[tokio::test]
#[ignore = "generator of tests/fixtures/release-0009: run by hand, and only on release 0009 (see upgrade.rs)"]
async fn make_release_0009_fixture() {
    let newest = newest_migration().await;
    assert_eq!(
        newest, FIXTURE_MIGRATION,
        "this release has migration {newest}: the fixture stands for databases made by release 0009 and is never \
         regenerated by a later release (see upgrade.rs)"
    );
    std::fs::create_dir_all(fixture_dir()).unwrap();
    let key_file = fixture_dir().join("data-key.b64");
    if !key_file.exists() {
        std::fs::write(&key_file, format!("{}\n", doudi::security::crypto::Keys::generate_base64())).unwrap();
    }
    let key = data_key();
    let app = spawn_app_on(None, |c| c.data_key = Some(key.into()), |_, _| {}).await;
    scenario(&app).await;
    app.app_hub.clock.set(None);
    if crate::ON_POSTGRES {
        let out = std::process::Command::new("pg_dump")
            .args(["--no-owner", "--no-privileges", "--inserts", "--dbname", &app.database_url])
            .output()
            .expect("pg_dump on PATH");
        assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
        let dump = String::from_utf8(out.stdout).unwrap();
        // `\restrict KEY` / `\unrestrict KEY` (pg_dump since 17.6, 16.10, 15.14, …) are psql meta-commands with a
        // random key: not SQL, and they would make every regeneration differ.
        let sql: String = dump.lines().filter(|l| !l.starts_with('\\')).flat_map(|l| [l, "\n"]).collect();
        std::fs::write(fixture_dir().join("postgres.sql"), sql).unwrap();
    } else {
        let target = fixture_dir().join("sqlite.db");
        let _ = std::fs::remove_file(&target);
        sqlx::query("VACUUM INTO ?")
            .bind(target.display().to_string())
            .execute(app.app_hub.store.sqlite_pool().unwrap())
            .await
            .unwrap();
    }
    app.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let app = hub_on(fixture_copy(dir.path()).await).await;
    let answers = observe(&app).await;
    app.stop().await;
    std::fs::write(answers_path(), serde_json::to_string_pretty(&answers).unwrap() + "\n").unwrap();
}

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    s.parse().unwrap()
}

fn stamp(s: &str) -> Option<prost_types::Timestamp> {
    let t = at(s);
    Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: 0 })
}

/// Push and check each outcome.
async fn pushed(c: &mut Clients, facts: Vec<pb::Fact>, want: &[pb::FactOutcome]) {
    let r = push(c, facts).await.unwrap();
    let got: Vec<pb::FactOutcome> = r.results.iter().map(outcome).collect();
    assert_eq!(got, want, "{r:?}");
    // A moment between batches, so each batch has its own recorded_at.
    tokio::time::sleep(Duration::from_millis(20)).await;
}

fn assistance(program: pb::Program, benefit: &str, household: &str) -> pb::fact::Payload {
    let mut a = pb::Assistance {
        program: program as i32,
        household_id: household.into(),
        monthly_benefit: benefit.into(),
        status: pb::AssistanceStatus::Active as i32,
        ..Default::default()
    };
    match program {
        pb::Program::Tekun => {
            a.residence = pb::Residence::Rural as i32;
            a.support_mode = pb::SupportMode::Dispersed as i32;
        }
        pb::Program::Dibao => {
            a.residence = pb::Residence::Rural as i32;
            a.rural_class = Some(2);
        }
        _ => a.residence = pb::Residence::Rural as i32,
    }
    pb::fact::Payload::Assistance(a)
}

fn fv(fid: &str, who: &str, division: &str, from: &str, to: &str, version: u64, p: pb::fact::Payload) -> pb::Fact {
    let mut f = with(base(fid, &person(who), division), p);
    f.valid_from = from.into();
    f.valid_to = to.into();
    f.source_version = version;
    f
}

/// medical_insurance cover for 2023.
fn insured(fid: &str, who: &str, division: &str) -> pb::Fact {
    fv(fid, who, division, "2023-01-01", "2024-01-01", 1, medical_insurance())
}

/// An inpatient settlement, in province, not referred; `m`: total, policy scope, basic, critical illness, medical
/// assistance, other, out of pocket (docs/spec/medical.md's worked examples).
fn settlement(id: &str, who: &str, division: &str, admitted: &str, settled: &str, m: [&str; 7]) -> pb::Settlement {
    pb::Settlement {
        settlement_id: id.into(),
        id_number: person(who),
        division_code: division.into(),
        admitted_on: admitted.into(),
        settled_on: settled.into(),
        visit_type: pb::VisitType::Inpatient as i32,
        in_province: true,
        referred: false,
        total_cost: m[0].into(),
        policy_scope_cost: m[1].into(),
        basic_paid: m[2].into(),
        critical_illness_paid: m[3].into(),
        medical_assistance_paid: m[4].into(),
        other_paid: m[5].into(),
        out_of_pocket: m[6].into(),
    }
}

async fn read(c: &mut Clients, who: &str, as_of: &str, purpose: &str) {
    c.exchange
        .get_recipient(pb::GetRecipientRequest {
            id_number: person(who),
            as_of: as_of.into(),
            purpose: purpose.into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn freeze(app: &TestApp, c: &mut Clients, quarter: &str, today: &str) {
    app.app_hub.clock.set(Some(at(today)));
    c.coordination.create_snapshot(pb::CreateSnapshotRequest { quarter: quarter.into() }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// Release 0009's clients at work through 2023: 12 persons in 7 counties, facts of every agency pushed in batches (one
/// over StreamFacts, two by a county office), new versions, corrections and ended facts, a move out of a county,
/// DUPLICATE, STALE and REJECTED records, audited reads by every agency, fund reports (on time, late, corrected),
/// warnings through their workflow, medical settlements with findings and a recheck, and 2023Q1–Q3 frozen in a chain
/// with corrections arriving after each freeze (so each snapshot's content depends on what was known when).
async fn scenario(app: &TestApp) {
    use pb::FactOutcome::{Accepted as A, Duplicate as D, NewVersion as N, Rejected as R, Stale as S};
    use pb::Program as Pg;
    let mut civil = app.client("civil_affairs").await;
    let mut huan_office = app.client_in("civil_affairs", Some(HUAN)).await;
    let mut hr = app.client("human_resources").await;
    let mut edu = app.client("education").await;
    let mut mi = app.client("medical_insurance").await;
    let mut df = app.client("disability_federation").await;
    let open = "";

    // --- 2023Q1 and Q2: enrolments. -------------------------------------------------------------------------------
    pushed(
        &mut civil,
        vec![
            fv("AS-P01", "P01", HUAN_VILLAGE, "2023-01-01", open, 1, rural_dibao()),
            fv("AS-P03", "P03", HUAN_VILLAGE, "2023-01-01", open, 1, rural_dibao()),
            fv("AS-P04", "P04", XIFENG_VILLAGE, "2023-01-01", open, 1, urban_dibao()),
            fv("AS-P05", "P05", QINGCHENG, "2023-01-01", open, 1, assistance(Pg::Tekun, "600.00", "HH-P05")),
            fv("AS-P06", "P06", NINGXIAN, "2023-02-01", open, 1, assistance(Pg::DibaoMarginal, "", "HH-P06")),
            fv("AS-P07", "P07", HUAN, "2023-01-01", open, 1, assistance(Pg::ExpenditureHardship, "", "HH-P07")),
        ],
        &[A, A, A, A, A, A],
    )
    .await;
    // The Huan county office enrols two more in its county.
    pushed(
        &mut huan_office,
        vec![
            fv("AS-P02", "P02", HUAN_VILLAGE, "2023-03-01", open, 1, rural_dibao()),
            fv("AS-P10", "P10", "621022101299", "2023-01-01", open, 1, assistance(Pg::Orphan, "1100.00", "HH-P10")),
        ],
        &[A, A],
    )
    .await;
    pushed(
        &mut hr,
        vec![
            fv("EM-P01", "P01", HUAN_VILLAGE, "2023-01-01", open, 1, employment()),
            fv("EM-P09", "P09", XIFENG, "2023-01-01", open, 1, employment()),
            fv("PE-P05", "P05", QINGCHENG, "2023-01-01", open, 1, pension()),
            fv("PE-P09", "P09", XIFENG, "2023-01-01", open, 1, pension()),
        ],
        &[A, A, A, A],
    )
    .await;
    // Education streams its facts in two messages.
    let stream = vec![
        pb::PushFactsRequest {
            facts: vec![
                fv("ST-P03", "P03", HUAN_VILLAGE, "2022-09-01", open, 1, student()),
                fv("ST-P10", "P10", "621022101299", "2022-09-01", open, 1, student()),
            ],
        },
        pb::PushFactsRequest {
            facts: vec![
                fv("ST-P08", "P08", ZHENYUAN, "2022-09-01", open, 1, student()),
                fv("EA-P08", "P08", ZHENYUAN, "2023-03-01", "2024-03-01", 1, education_aid()),
                fv("EA-P03", "P03", HUAN_VILLAGE, "2023-03-01", "2024-03-01", 1, education_aid()),
            ],
        },
    ];
    let r = edu.exchange.stream_facts(tokio_stream::iter(stream)).await.unwrap().into_inner();
    assert_eq!(r.counts.unwrap().accepted, 5, "{:?}", r.results);
    pushed(
        &mut df,
        vec![
            fv("DI-P05", "P05", QINGCHENG, "2020-05-01", open, 1, disability(&person("P05"))),
            fv("DS-P05", "P05", QINGCHENG, "2023-01-01", open, 1, disability_subsidy()),
        ],
        &[A, A],
    )
    .await;
    pushed(
        &mut mi,
        vec![
            insured("MI-P01", "P01", HUAN_VILLAGE),
            insured("MI-P05", "P05", QINGCHENG),
            insured("MI-P06", "P06", NINGXIAN),
            insured("MI-P07", "P07", HUAN),
        ],
        &[A, A, A, A],
    )
    .await;
    // A correction of P03's benefit (same start), a duplicate of P05's enrolment, and a record with an unknown place.
    let mut corrected = rural_dibao();
    if let pb::fact::Payload::Assistance(a) = &mut corrected {
        a.monthly_benefit = "452.00".into();
    }
    pushed(
        &mut civil,
        vec![
            fv("AS-P03", "P03", HUAN_VILLAGE, "2023-01-01", open, 2, corrected),
            fv("AS-P05", "P05", QINGCHENG, "2023-01-01", open, 1, assistance(Pg::Tekun, "600.00", "HH-P05")),
            fv("AS-BAD", "P12", "999999", "2023-01-01", open, 1, rural_dibao()),
        ],
        &[N, D, R],
    )
    .await;

    // Reads by the agencies (audited).
    read(&mut mi, "P01", "2023-03-15", "settlement review").await;
    read(&mut hr, "P09", "2023-03-15", "employment service").await;
    read(&mut edu, "P03", "2023-03-15", "living allowance").await;
    read(&mut df, "P05", "2023-03-15", "subsidy review").await;
    read(&mut huan_office, "P02", "2023-03-15", "home visit").await;
    civil
        .exchange
        .list_recipients(pb::ListRecipientsRequest {
            division_code: HUAN.into(),
            program: Pg::Dibao as i32,
            as_of: "2023-03-31".into(),
            purpose: "quarterly check".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    // Fund reports for March: Huan on time, then corrected; Xifeng late.
    let report = |county: &str, month: &str, program: pb::FundProgram, amount: &str, recipients: i64| {
        pb::SubmitFundReportRequest {
            county_code: county.into(),
            month: month.into(),
            program: program as i32,
            disbursed_on: format!("{month}-10"),
            amount: amount.into(),
            recipients,
        }
    };
    app.app_hub.clock.set(Some(at("2023-04-10T02:00:00Z")));
    civil
        .coordination
        .submit_fund_report(report(HUAN, "2023-03", pb::FundProgram::RuralDibao, "1336.00", 3))
        .await
        .unwrap();
    app.app_hub.clock.set(Some(at("2023-04-20T02:00:00Z")));
    civil
        .coordination
        .submit_fund_report(report(XIFENG, "2023-03", pb::FundProgram::UrbanDibao, "700.00", 1))
        .await
        .unwrap();
    app.app_hub.clock.set(Some(at("2023-04-25T02:00:00Z")));
    civil
        .coordination
        .submit_fund_report(report(HUAN, "2023-03", pb::FundProgram::RuralDibao, "1346.00", 3))
        .await
        .unwrap();

    // Warnings: one through the whole workflow, one left open (overdue later).
    app.app_hub.clock.set(Some(at("2023-05-10T02:00:00Z")));
    let warning = |id: &str, who: &str, division: &str, received: &str, reason: pb::WarningReason| pb::WarningIn {
        warning_id: id.into(),
        id_number: person(who),
        division_code: division.into(),
        reason: reason as i32,
        received_at: stamp(received),
    };
    let r = civil
        .coordination
        .push_warnings(pb::PushWarningsRequest {
            warnings: vec![
                warning("W-1", "P11", HESHUI, "2023-05-08T02:00:00Z", pb::WarningReason::IncomeDrop),
                warning("W-2", "P12", XIFENG, "2023-05-09T02:00:00Z", pb::WarningReason::Illness),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.outcomes, [pb::WarningPushOutcome::Accepted as i32; 2]);
    use pb::record_warning_outcome_request::Step;
    for step in [
        Step::Visit(pb::WarningVisit { visited_on: "2023-05-10".into() }),
        Step::Decision(pb::WarningDecisionStep {
            decided_on: "2023-05-12".into(),
            decision: pb::WarningDecision::Assisted as i32,
            program: pb::FundProgram::RuralDibao as i32,
        }),
        Step::Close(pb::WarningClose { closed_on: "2023-05-20".into() }),
    ] {
        civil
            .coordination
            .record_warning_outcome(pb::RecordWarningOutcomeRequest { warning_id: "W-1".into(), step: Some(step) })
            .await
            .unwrap();
    }

    // Medical settlements (docs/spec/medical.md's examples A, B and C): P01 (dibao) none, P06 (marginal)
    // ASSISTANCE_MISSED, P07 (expenditure hardship only) ASSISTANCE_TO_INELIGIBLE.
    app.app_hub.clock.set(Some(at("2023-06-20T02:00:00Z")));
    let r = mi
        .medical
        .submit_settlements(pb::SubmitSettlementsRequest {
            settlements: vec![
                settlement(
                    "S-A",
                    "P01",
                    HUAN,
                    "2023-03-01",
                    "2023-03-10",
                    ["30000.00", "25000.00", "15000.00", "3250.00", "4725.00", "0.00", "7025.00"],
                ),
                settlement(
                    "S-B",
                    "P06",
                    NINGXIAN,
                    "2023-04-01",
                    "2023-04-10",
                    ["12000.00", "10000.00", "6000.00", "0.00", "0.00", "0.00", "6000.00"],
                ),
                settlement(
                    "S-C",
                    "P07",
                    HUAN,
                    "2023-05-01",
                    "2023-05-10",
                    ["6000.00", "5000.00", "3000.00", "0.00", "500.00", "0.00", "2500.00"],
                ),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    for s in &r.results {
        assert_eq!(s.outcome, pb::SettlementOutcome::Accepted as i32, "{s:?}");
    }
    assert_eq!(r.results.iter().map(|s| s.findings.len()).collect::<Vec<_>>(), [0, 1, 1], "{r:?}");

    // Fund report for June; a watch opened and dropped; who looked at P01.
    app.app_hub.clock.set(Some(at("2023-07-12T02:00:00Z")));
    civil
        .coordination
        .submit_fund_report(report(QINGCHENG, "2023-06", pb::FundProgram::Tekun, "600.00", 1))
        .await
        .unwrap();
    drop(
        civil
            .exchange
            .watch_changes(pb::WatchChangesRequest {
                after_cursor: Some(0),
                purpose: "sync".into(),
                ..Default::default()
            })
            .await
            .unwrap(),
    );
    civil
        .audit
        .list_access_events(pb::ListAccessEventsRequest {
            id_number: person("P01"),
            purpose: "complaint 2023-07".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    // --- Freeze 2023Q1 and 2023Q2; what arrives afterwards must not change them. -------------------------------------
    freeze(app, &mut civil, "2023Q1", "2023-07-14T02:00:00Z").await;
    freeze(app, &mut civil, "2023Q2", "2023-07-14T03:00:00Z").await;

    // --- 2023Q3: new versions with later starts, an ended fact, a move, a correction that changes a finding. ----------
    let mut raised = rural_dibao();
    if let pb::fact::Payload::Assistance(a) = &mut raised {
        a.monthly_benefit = "480.00".into();
    }
    let mut ended_marginal = assistance(Pg::DibaoMarginal, "", "HH-P06");
    if let pb::fact::Payload::Assistance(a) = &mut ended_marginal {
        a.status = pb::AssistanceStatus::Terminated as i32;
    }
    pushed(
        &mut civil,
        vec![
            // P01: the 2023 enrolment ends on 2023-07-01; a new one from then at 480.00.
            fv("AS-P01", "P01", HUAN_VILLAGE, "2023-01-01", "2023-07-01", 2, rural_dibao()),
            fv("AS-P01-H2", "P01", HUAN_VILLAGE, "2023-07-01", open, 1, raised),
            // P04 stops on 2023-07-01 (ended, not replaced).
            fv("AS-P04", "P04", XIFENG_VILLAGE, "2023-01-01", "2023-07-01", 2, urban_dibao()),
            // P06 terminated from 2023-08-01.
            fv("AS-P06", "P06", NINGXIAN, "2023-08-01", open, 2, ended_marginal),
            // P07 was rural dibao all along (a correction from the start): the medical finding changes on recheck.
            fv("AS-P07", "P07", HUAN, "2023-01-01", open, 2, assistance(Pg::Dibao, "442.00", "HH-P07")),
            // P02 moves to Xifeng from 2023-08-01 (the city office pushes it: it leaves Huan's scope).
            fv("AS-P02", "P02", XIFENG_VILLAGE, "2023-08-01", open, 2, rural_dibao()),
            // P12, warned in May, enrolled in September.
            fv("AS-P12", "P12", XIFENG, "2023-09-01", open, 1, urban_dibao()),
            // An older version of P01's enrolment arriving late.
            fv("AS-P01", "P01", HUAN_VILLAGE, "2023-01-01", open, 1, rural_dibao()),
        ],
        &[N, A, N, N, N, N, A, S],
    )
    .await;
    let mut employed = employment();
    if let pb::fact::Payload::Employment(e) = &mut employed {
        e.status = pb::EmploymentStatus::Employed as i32;
    }
    pushed(&mut hr, vec![fv("EM-P09", "P09", XIFENG, "2023-09-01", open, 2, employed)], &[N]).await;
    let mut junior = student();
    if let pb::fact::Payload::Student(s) = &mut junior {
        s.stage = pb::Stage::JuniorSecondary as i32;
        s.school_code = "S-621027-02".into();
    }
    pushed(&mut edu, vec![fv("ST-P08", "P08", ZHENYUAN, "2023-09-01", open, 2, junior)], &[N]).await;

    app.app_hub.clock.set(Some(at("2023-09-05T02:00:00Z")));
    let r = civil
        .medical
        .recheck_period(pb::RecheckPeriodRequest {
            from_date: "2023-01-01".into(),
            to_date: "2023-12-31".into(),
            purpose: "status corrections".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.findings_resolved >= 1, "{r:?}");
    let r = civil
        .coordination
        .push_warnings(pb::PushWarningsRequest {
            warnings: vec![warning("W-3", "P06", NINGXIAN, "2023-09-04T02:00:00Z", pb::WarningReason::Accident)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.outcomes, [pb::WarningPushOutcome::Accepted as i32]);
    app.app_hub.clock.set(Some(at("2023-10-09T02:00:00Z")));
    civil
        .coordination
        .submit_fund_report(report(HUAN, "2023-09", pb::FundProgram::RuralDibao, "1374.00", 3))
        .await
        .unwrap();
    read(&mut mi, "P07", "2023-09-30", "recheck follow-up").await;
    read(&mut edu, "P10", "2023-09-30", "new school year").await;
    read(&mut hr, "P01", "2023-09-30", "employment service").await;

    freeze(app, &mut civil, "2023Q3", "2023-10-12T02:00:00Z").await;

    // --- 2023Q4, after the Q3 freeze: retroactive changes into Q3. -------------------------------------------------
    let mut tekun_raised = assistance(Pg::Tekun, "650.00", "HH-P05");
    if let pb::fact::Payload::Assistance(a) = &mut tekun_raised {
        a.support_mode = pb::SupportMode::Centralized as i32;
    }
    pushed(
        &mut civil,
        vec![
            fv("AS-P05", "P05", QINGCHENG, "2023-09-01", open, 2, tekun_raised),
            fv(
                "AS-P10",
                "P10",
                "621022101299",
                "2023-01-01",
                "2023-12-01",
                2,
                assistance(Pg::Orphan, "1100.00", "HH-P10"),
            ),
        ],
        &[N, N],
    )
    .await;
    pushed(&mut df, vec![fv("DS-P05", "P05", QINGCHENG, "2023-01-01", "2023-10-01", 2, disability_subsidy())], &[N])
        .await;
    read(&mut df, "P05", "2023-12-31", "annual review").await;
    read(&mut huan_office, "P10", "2023-12-31", "year-end visit").await;
}

/// Operator commands never migrate (docs/operations.md §11; found by a session that attacked the upgrade): on the
/// release-0009 fixture, `audit verify`, `snapshot list` and `snapshot verify` of this release refuse, naming the
/// migration the database is at and the one this release needs, and the database stays at 0009 (a hub of release 0009
/// could still serve it, a backup stays restorable by it). `doudi migrate` then applies 0010; on SQLite the migrated
/// layout is in the database file itself (checkpointed), not only in its write-ahead log, and the checks pass.
#[apply(e2e!)]
#[tokio::test]
async fn operator_commands_refuse_a_database_that_needs_migrating_and_do_not_migrate_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = fixture_copy(dir.path()).await;
    let doudi = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
            .args(args)
            .args(["--database-url", &url])
            .env("DOUDI_DATA_KEY", data_key())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let known = doudi::store::Store::open(&url).await.unwrap().migration_versions().await.unwrap().1;
    assert!(known >= 10, "this release has migration 0010");
    for args in [&["audit", "verify"][..], &["snapshot", "list"], &["snapshot", "verify", "2023Q2"]] {
        let (ok, _, err) = doudi(args);
        assert!(!ok, "{args:?} must refuse a database at 0009");
        assert!(
            err.contains("is at migration 9") && err.contains(&format!("needs migration {known}")),
            "{args:?}: {err}"
        );
        assert!(err.contains("doudi migrate"), "{args:?} says what to do: {err}");
        assert_eq!(newest_applied(&url).await, 9, "{args:?} left the database at 0009");
    }
    let (ok, out, err) = doudi(&["migrate"]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("now at migration {known}")), "{out}");
    if !crate::ON_POSTGRES {
        let file = doudi::store::sqlite_file(&url).unwrap();
        let wal = file.with_extension("db-wal");
        let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert_eq!(wal_len, 0, "the migration is checkpointed into {}", file.display());
    }
    assert_eq!(newest_applied(&url).await, known);
    let (ok, out, err) = doudi(&["audit", "verify"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = doudi(&["snapshot", "verify", "2023Q2"]);
    assert!(ok, "{out}{err}");
}
