//! The working-day calendar as operators keep it (issue 15): a warning is never refused because next year's State
//! Council holiday notice is not loaded; its deadlines are provisional (Monday–Friday) and move, with history,
//! when `doudi calendar add` loads the year; invalid notice files are refused naming the date and the rule; the
//! 2022–2026 files in `calendar/` reproduce migration 0003's table; migration 0008 keeps a previous release's data.
//!
//! Every expected date below is counted by hand from the calendar (weekdays noted next to it).

use chrono::{DateTime, Utc};
use doudi::client::Clients;
use doudi::domain::holiday_notice::{FileFormat, NoticeFile};
use doudi::grpc::pb;
use doudi::hub::calendar::{LoadOutcome, load_notice};
use macro_rules_attribute::apply;

use crate::support::*;

const HUAN: &str = "621022";

/// A 2027 test notice that makes Fri 2027-01-01 a holiday (not the real notice, which is not published yet).
const TEST_2027: &str = r#"
year = 2027
holidays = [
  { name = "元旦", first = "2027-01-01" },
  { name = "春节", first = "2027-02-06", last = "2027-02-12" },
]
make_up_workdays = [
  { name = "春节", date = "2027-01-31" },
]
"#;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn warning(id: &str, id_number: &str, received: &str) -> pb::WarningIn {
    let t = at(received);
    pb::WarningIn {
        warning_id: id.into(),
        id_number: id_number.into(),
        division_code: HUAN.into(),
        reason: pb::WarningReason::IncomeDrop as i32,
        received_at: Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: 0 }),
    }
}

async fn list(c: &mut Clients, as_of: &str) -> Vec<pb::Warning> {
    let r = c
        .coordination
        .list_warnings(pb::ListWarningsRequest { as_of: as_of.into(), purpose: "test".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    r.warnings
}

fn find<'a>(ws: &'a [pb::Warning], id: &str) -> &'a pb::Warning {
    ws.iter().find(|w| w.warning_id == id).unwrap()
}

fn notice(text: &str) -> NoticeFile {
    NoticeFile::parse(text, FileFormat::Toml).unwrap()
}

#[apply(e2e!)]
#[tokio::test]
async fn a_warning_past_the_loaded_years_is_accepted_provisionally_and_rescheduled_when_the_year_is_loaded() {
    let app = spawn_app().await;
    app.app_hub.clock.set(Some(at("2027-01-05T03:00:00Z")));
    let mut civil = app.client("civil_affairs").await;
    let out = civil
        .coordination
        .push_warnings(pb::PushWarningsRequest {
            warnings: vec![
                // Mon 2026-12-28 10:00 Shanghai.
                warning("W-1228", &id(HUAN, (1980, 1, 1), 1), "2026-12-28T02:00:00Z"),
                // Tue 2026-12-29 10:00 Shanghai.
                warning("W-1229", &id(HUAN, (1980, 1, 2), 2), "2026-12-29T02:00:00Z"),
                // Mon 2026-12-21 10:00 Shanghai: both deadlines inside 2026.
                warning("W-1221", &id(HUAN, (1980, 1, 3), 3), "2026-12-21T02:00:00Z"),
            ],
        })
        .await
        .unwrap()
        .into_inner()
        .outcomes;
    assert_eq!(out, vec![pb::WarningPushOutcome::Accepted as i32; 3], "never refused for a missing year");

    let ws = list(&mut civil, "2026-12-28").await;
    let w = find(&ws, "W-1228");
    // Visit (3): Tue 12-29, Wed 12-30, Thu 12-31 → 2026-12-31, all in the loaded 2026.
    assert_eq!((w.visit_due.as_str(), w.visit_due_provisional), ("2026-12-31", false));
    // Decision (5): … Thu 12-31, Fri 2027-01-01, Mon 2027-01-04 under the Monday–Friday rule.
    assert_eq!((w.decision_due.as_str(), w.decision_due_provisional), ("2027-01-04", true));
    assert!(w.deadline_history.is_empty());
    let w = find(&ws, "W-1229");
    // Visit: Wed 12-30, Thu 12-31, Fri 2027-01-01; decision: … Mon 01-04, Tue 01-05 (provisional).
    assert_eq!((w.visit_due.as_str(), w.visit_due_provisional), ("2027-01-01", true));
    assert_eq!((w.decision_due.as_str(), w.decision_due_provisional), ("2027-01-05", true));
    let w = find(&ws, "W-1221");
    // Tue 12-22, Wed 12-23, Thu 12-24 → visit 12-24; Fri 12-25, Mon 12-28 → decision 12-28.
    assert_eq!((w.visit_due.as_str(), w.decision_due.as_str()), ("2026-12-24", "2026-12-28"));
    assert!(!w.visit_due_provisional && !w.decision_due_provisional);

    // Lateness counted into 2027 is provisional too: on Wed 2027-01-06 W-1228 is undecided and late by Tue 01-05
    // and Wed 01-06.
    let ws = list(&mut civil, "2027-01-06").await;
    let w = find(&ws, "W-1228");
    assert!(w.overdue && w.days_late_provisional);
    assert_eq!(w.decision_days_late, 2);

    // W-1229 is visited and decided before the year is loaded: its outcome must survive the load.
    let step = |s| pb::RecordWarningOutcomeRequest { warning_id: "W-1229".into(), step: Some(s) };
    use pb::record_warning_outcome_request::Step;
    civil
        .coordination
        .record_warning_outcome(step(Step::Visit(pb::WarningVisit { visited_on: "2026-12-30".into() })))
        .await
        .unwrap();
    civil
        .coordination
        .record_warning_outcome(step(Step::Decision(pb::WarningDecisionStep {
            decided_on: "2027-01-05".into(),
            decision: pb::WarningDecision::Assisted as i32,
            program: pb::FundProgram::RuralDibao as i32,
        })))
        .await
        .unwrap();

    let audits = app.audit_events().await;
    let store = &app.app_hub.store;
    let r = load_notice(
        store,
        &notice(TEST_2027),
        "国办发明电〔2026〕测试号",
        None,
        &doudi::domain::admin::Actor::direct("test"),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, LoadOutcome::Loaded { version: 1 });
    assert_eq!((r.holidays, r.make_up_workdays), (8, 1));
    assert_eq!(r.changes.len(), 2, "W-1228 and W-1229 move; W-1221 does not");
    assert_eq!(app.audit_events().await, audits + 1, "the load is audited");

    let ws = list(&mut civil, "2027-01-04").await;
    let w = find(&ws, "W-1228");
    // 2027-01-01 is now a holiday: decision … Thu 12-31, Mon 01-04, Tue 01-05.
    assert_eq!((w.visit_due.as_str(), w.visit_due_provisional), ("2026-12-31", false));
    assert_eq!((w.decision_due.as_str(), w.decision_due_provisional), ("2027-01-05", false));
    assert_eq!(w.deadline_history.len(), 1);
    let h = &w.deadline_history[0];
    assert_eq!((h.calendar_year, h.calendar_version), (2027, 1));
    assert_eq!(
        (h.old_visit_due.as_str(), h.old_decision_due.as_str(), h.old_provisional),
        ("2026-12-31", "2027-01-04", true)
    );
    assert_eq!(
        (h.new_visit_due.as_str(), h.new_decision_due.as_str(), h.new_provisional),
        ("2026-12-31", "2027-01-05", false)
    );
    let w = find(&ws, "W-1229");
    // Visit: Wed 12-30, Thu 12-31, Mon 01-04; decision: … Tue 01-05, Wed 01-06.
    assert_eq!((w.visit_due.as_str(), w.decision_due.as_str()), ("2027-01-04", "2027-01-06"));
    assert_eq!(w.state, pb::WarningState::Decided as i32, "the outcome is kept");
    assert_eq!(w.decision, pb::WarningDecision::Assisted as i32);
    assert_eq!(w.decided_on, "2027-01-05");
    assert!(w.decided_on_time && w.visited_on_time);
    assert!(find(&ws, "W-1221").deadline_history.is_empty());

    // The same file again: nothing changes, nothing audited.
    let audits = app.audit_events().await;
    let again = load_notice(
        store,
        &notice(TEST_2027),
        "国办发明电〔2026〕测试号",
        None,
        &doudi::domain::admin::Actor::direct("test"),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(again.outcome, LoadOutcome::Unchanged { version: 1 });
    assert_eq!(app.audit_events().await, audits);

    // Other content for a loaded year: refused without --correction, nothing changed ...
    let corrected = TEST_2027.replace(
        "{ name = \"元旦\", first = \"2027-01-01\" }",
        "{ name = \"元旦\", first = \"2027-01-01\", last = \"2027-01-03\" }",
    );
    let e = load_notice(
        store,
        &notice(&corrected),
        "国办发明电〔2026〕测试号",
        None,
        &doudi::domain::admin::Actor::direct("test"),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, doudi::hub::HubError::AlreadyExists(_)), "{e}");
    assert!(e.to_string().contains("calendar year 2027 is already loaded (version 1"), "{e}");
    assert!(e.to_string().contains("2027-01-02 HOLIDAY 元旦"), "names what differs: {e}");
    // ... and kept as version 2 with --correction; version 1 stays in the history. 01-02 and 01-03 are a
    // Saturday and a Sunday, so no deadline moves.
    let r = load_notice(
        store,
        &notice(&corrected),
        "国办发明电〔2026〕测试号",
        Some("元旦 block is three days"),
        &doudi::domain::admin::Actor::direct("test"),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, LoadOutcome::Loaded { version: 2 });
    assert!(r.changes.is_empty());
    let versions: Vec<(i32, i64)> = store
        .calendar_notices()
        .await
        .unwrap()
        .iter()
        .filter(|n| n.year == 2027)
        .map(|n| (n.year, n.version))
        .collect();
    assert_eq!(versions, vec![(2027, 1), (2027, 2)]);
    app.stop().await;
}

/// `doudi calendar add` refuses each invalid file with the date and the rule, and changes nothing.
#[apply(e2e!)]
#[tokio::test]
async fn invalid_notice_files_are_refused_naming_the_date_and_the_rule() {
    let app = spawn_app().await;
    let before = app.app_hub.store.calendar_notices().await.unwrap();
    let cases = [
        // A date outside the year.
        (
            "year = 2027\nholidays = [{ name = \"元旦\", first = \"2027-01-01\" }, { name = \"国庆节\", first = \"2028-10-01\" }]",
            "holidays[1]: 2028-10-01 lies outside 2027",
        ),
        // A make-up working day on a weekday (Mon 2027-02-08).
        (
            "year = 2027\nholidays = [{ name = \"元旦\", first = \"2027-01-01\" }]\nmake_up_workdays = [{ name = \"春节\", date = \"2027-02-08\" }]",
            "make_up_workdays[0].date: 2027-02-08 is a Mon",
        ),
        // A holiday on a make-up day (Sat 2027-02-06 in the block).
        (
            "year = 2027\nholidays = [{ name = \"元旦\", first = \"2027-01-01\" }, { name = \"春节\", first = \"2027-02-06\", last = \"2027-02-12\" }]\nmake_up_workdays = [{ name = \"春节\", date = \"2027-02-06\" }]",
            "2027-02-06 is listed both as a holiday and as a make-up working day",
        ),
        // No 1 January.
        ("year = 2027\nholidays = [{ name = \"春节\", first = \"2027-02-06\" }]", "1 January 2027 is not listed"),
        // A year already loaded with other content (2024 from the migration).
        (
            "year = 2024\nholidays = [{ name = \"元旦\", first = \"2024-01-01\" }]",
            "calendar year 2024 is already loaded (version 1",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let file = app.dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
            .args(["calendar", "add"])
            .arg(&file)
            .args(["--source", "test", "--direct-database", "--database-url", &app.database_url])
            .env_remove("DOUDI_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "case {i} accepted");
        assert!(stderr.contains(expected), "case {i}: {stderr}");
    }
    assert_eq!(app.app_hub.store.calendar_notices().await.unwrap(), before, "nothing changed");
    app.stop().await;
}

/// Loading `calendar/2022.toml` … `2026.toml` with `doudi calendar add` into a database whose calendar was
/// emptied gives exactly the `work_calendar` table migration 0003 makes.
#[apply(e2e!)]
#[tokio::test]
async fn the_shipped_notice_files_reproduce_the_migration_table() {
    let app = spawn_app().await;
    let rows = |app: &TestApp| {
        let store = app.app_hub.store.clone();
        async move {
            let sql = "SELECT CAST(date AS TEXT), kind, name, CAST(year AS TEXT), source FROM work_calendar ORDER BY 1";
            let rows: Vec<(String, String, String, String, String)> = if crate::ON_POSTGRES {
                sqlx::query_as(sql).fetch_all(store.pg_pool().unwrap()).await.unwrap()
            } else {
                sqlx::query_as(sql).fetch_all(store.sqlite_pool().unwrap()).await.unwrap()
            };
            rows
        }
    };
    let migrated = rows(&app).await;
    assert_eq!(migrated.len(), 180, "0003_calendar.sql inserts 180 rows");
    for sql in ["DELETE FROM calendar_notice_days", "DELETE FROM calendar_notices", "DELETE FROM work_calendar"] {
        if crate::ON_POSTGRES {
            sqlx::query(sql).execute(app.app_hub.store.pg_pool().unwrap()).await.unwrap();
        } else {
            sqlx::query(sql).execute(app.app_hub.store.sqlite_pool().unwrap()).await.unwrap();
        }
    }
    for year in 2022..=2026 {
        // The source each year has in the migration.
        let source = &migrated.iter().find(|r| r.3 == year.to_string()).unwrap().4;
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
            .args(["calendar", "add", &format!("{}/calendar/{year}.toml", env!("CARGO_MANIFEST_DIR"))])
            .args(["--source", source, "--direct-database", "--database-url", &app.database_url])
            .env_remove("DOUDI_CONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{year}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("calendar {year} loaded as version 1")));
    }
    assert_eq!(rows(&app).await, migrated);
    // `calendar show` names every year and its source.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
        .args(["calendar", "show", "--json", "--database-url", &app.database_url])
        .env_remove("DOUDI_CONFIG")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["covered_years"], serde_json::json!([2022, 2023, 2024, 2025, 2026]));
    assert_eq!(v["versions"][1]["source"], "国务院办公厅关于2023年部分节假日安排的通知");
    assert_eq!(v["versions"][1]["notice"]["holidays"][0]["first"], "2022-12-31");
    app.stop().await;
}

/// Migration 0008 on a database made by the previous release (migrations 0001–0007), holding a year an operator
/// had added to `work_calendar` by hand: nothing in `work_calendar` changes, and every year becomes version 1 of
/// its notice with exactly its rows.
#[apply(e2e!)]
#[tokio::test]
async fn migration_0008_keeps_a_previous_release_calendar() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_database_url(dir.path()).await;
    let store = doudi::store::Store::open(&url).await.unwrap();
    store.migrate_to(7).await.unwrap();
    let exec = |sql: &'static str| {
        let store = store.clone();
        async move {
            if crate::ON_POSTGRES {
                sqlx::query(sql).execute(store.pg_pool().unwrap()).await.unwrap();
            } else {
                sqlx::query(sql).execute(store.sqlite_pool().unwrap()).await.unwrap();
            }
        }
    };
    exec("INSERT INTO work_calendar (date, kind, name, year, source) VALUES ('2027-01-01', 'HOLIDAY', '元旦', 2027, 'hand-made')").await;
    exec("INSERT INTO work_calendar (date, kind, name, year, source) VALUES ('2027-01-31', 'MAKEUP_WORKDAY', '春节', 2027, 'hand-made')").await;
    let read = |sql: &'static str| {
        let store = store.clone();
        async move {
            let rows: Vec<(String, String, String, String, String)> = if crate::ON_POSTGRES {
                sqlx::query_as(sql).fetch_all(store.pg_pool().unwrap()).await.unwrap()
            } else {
                sqlx::query_as(sql).fetch_all(store.sqlite_pool().unwrap()).await.unwrap()
            };
            rows
        }
    };
    let calendar_sql =
        "SELECT CAST(date AS TEXT), kind, name, CAST(year AS TEXT), source FROM work_calendar ORDER BY 1";
    let before = read(calendar_sql).await;
    assert_eq!(before.len(), 182);
    store.migrate().await.unwrap();
    assert_eq!(read(calendar_sql).await, before, "work_calendar unchanged");
    let days = read(
        "SELECT CAST(d.date AS TEXT), d.kind, d.name, CAST(d.year AS TEXT), n.source FROM calendar_notice_days d \
         JOIN calendar_notices n ON n.year = d.year AND n.version = d.version WHERE d.version = 1 ORDER BY 1",
    )
    .await;
    assert_eq!(days, before, "every row is version 1 of its year's notice, with its source");
    let notices = store.calendar_notices().await.unwrap();
    assert_eq!(
        notices.iter().map(|n| (n.year, n.version)).collect::<Vec<_>>(),
        (2022..=2027).map(|y| (y, 1)).collect::<Vec<_>>()
    );
    assert_eq!(notices[5].source, "hand-made");
    store.close().await;
}

/// A New Year block may start early in December (up to 31 days): warnings received in late November whose deadlines
/// reach it are rescheduled with history too (found by a break-it run: they moved silently).
#[apply(e2e!)]
#[tokio::test]
async fn a_long_new_year_block_reschedules_warnings_received_before_december_with_history() {
    let app = spawn_app().await;
    app.app_hub.clock.set(Some(at("2026-12-06T03:00:00Z")));
    let mut civil = app.client("civil_affairs").await;
    civil
        .coordination
        .push_warnings(pb::PushWarningsRequest {
            // Mon 2026-11-30 10:00 Shanghai: visit Tue 12-01, Wed 12-02, Thu 12-03 → 2026-12-03.
            warnings: vec![warning("W-NOV", &id(HUAN, (1980, 1, 4), 4), "2026-11-30T02:00:00Z")],
        })
        .await
        .unwrap();
    let block = r#"year = 2027
holidays = [{ name = "元旦", first = "2026-12-02", last = "2027-01-01" }]"#;
    let r = load_notice(
        &app.app_hub.store,
        &notice(block),
        "test",
        None,
        &doudi::domain::admin::Actor::direct("test"),
        Utc::now(),
    )
    .await
    .unwrap();
    // Off from Wed 12-02 to Fri 2027-01-01: visit Tue 12-01, Mon 2027-01-04, Tue 01-05 → 2027-01-05;
    // decision … Wed 01-06, Thu 01-07 → 2027-01-07.
    assert_eq!(r.changes.len(), 1);
    let c = &r.changes[0];
    assert_eq!((c.old_visit_due.to_string(), c.new_visit_due.to_string()), ("2026-12-03".into(), "2027-01-05".into()));
    assert_eq!(c.new_decision_due.to_string(), "2027-01-07");
    let ws = list(&mut civil, "2026-12-06").await;
    assert_eq!(find(&ws, "W-NOV").deadline_history.len(), 1);
    app.stop().await;
}

/// A load planned before another notice was loaded is refused by the store (`Raced`) and writes nothing; the source
/// and correction texts are one line.
#[apply(e2e!)]
#[tokio::test]
async fn a_stale_plan_writes_nothing_and_texts_are_one_line() {
    let app = spawn_app().await;
    let store = &app.app_hub.store;
    let before = store.calendar_notices().await.unwrap();
    let audits = app.audit_events().await;
    let load = doudi::store::NoticeLoad {
        year: 2027,
        source: "test".into(),
        reason: String::new(),
        loaded_by: "operator:test".into(),
        loaded_at: Utc::now(),
        entries: notice(TEST_2027).entries().unwrap(),
        // Planned when only 2022–2025 were held: 2026 has been loaded since.
        expected_versions: (2022..=2025).map(|y| (y, 1)).collect(),
        warnings_since: at("2026-12-01T00:00:00Z"),
    };
    let plan =
        |_: &[doudi::store::StoredWarning]| -> Result<_, doudi::store::StoreError> { panic!("not run when raced") };
    assert_eq!(store.load_calendar_notice(&load, &plan).await.unwrap(), doudi::store::NoticeLoaded::Raced);
    assert_eq!(store.calendar_notices().await.unwrap(), before);
    assert_eq!(app.audit_events().await, audits);
    let e = load_notice(
        store,
        &notice(TEST_2027),
        "line1\nyear = 1999",
        None,
        &doudi::domain::admin::Actor::direct("test"),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.to_string(), "source: contains a control character (a line break, tab, escape or NUL)");
    app.stop().await;
}
