//! Tests that only make sense with PostgreSQL (compiled only into `tests/api_pg`): the hub under a lost database
//! connection, and the same frozen quarter on SQLite and PostgreSQL.

use doudi::grpc::pb;
use macro_rules_attribute::apply;
use sqlx::Connection as _;

use crate::support::{base, id, rural_dibao, with};

/// PostgreSQL: a database connection terminated under a request in flight (a failover, `pg_terminate_backend`) is
/// UNAVAILABLE — the code clients retry — not INTERNAL; nothing is stored, and the next push is served.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_connection_lost_mid_request_is_unavailable_and_the_hub_recovers() {
    let app = crate::support::spawn_app().await;
    let mut c = app.client("civil_affairs").await;
    let person = id("621022", (1980, 5, 5), 7);
    let db = app.database_url.clone();
    // Hold the hub's write lock (ASCII "doudi-wr") so the push waits inside its transaction, then cut the hub's
    // connections while it waits.
    let mut admin = sqlx::PgConnection::connect(&db).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)").bind(0x646f_7564_692d_7772_i64).execute(&mut admin).await.unwrap();
    let mut c2 = c.clone();
    let p = person.clone();
    let pushing = tokio::spawn(async move {
        crate::support::push(&mut c2, vec![with(base("MZ-LOST", &p, "621022"), rural_dibao())]).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let killed: i64 = sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(killed >= 1);
    let e = pushing.await.unwrap().expect_err("the push's connection was terminated");
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut admin).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM facts").fetch_one(&mut admin).await.unwrap();
    assert_eq!(stored, 0);
    let r = crate::support::push(&mut c, vec![with(base("MZ-LOST", &person, "621022"), rural_dibao())]).await.unwrap();
    assert_eq!(crate::support::outcome(&r.results[0]), pb::FactOutcome::Accepted);
}

/// The same facts under the same data key give the same frozen quarter on both backends (docs/snapshot-format.md:
/// the content is defined by the canonical rows, not by the engine): every section hash of 2023Q2 is equal on a
/// SQLite hub and a PostgreSQL hub, except `agencies`, which holds each agency's push times (system time, different
/// by construction in two runs).
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_facts_freeze_to_the_same_sections_on_sqlite_and_postgresql() {
    use doudi::grpc::convert::fact_out;
    use doudi::tools::synth::{AGENCIES, Population, SynthConfig};
    let key = doudi::security::crypto::Keys::generate_base64();
    let sqlite_dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", sqlite_dir.path().join("same.db").display());
    let k = key.clone();
    let pg = crate::support::spawn_app_with(move |c| c.data_key = Some(k.into())).await;
    let sq = crate::support::spawn_app_with(move |c| {
        c.data_key = Some(key.into());
        c.database_url = sqlite_url;
    })
    .await;
    assert_eq!(sq.app_hub.store.backend_name(), "sqlite");
    assert_eq!(pg.app_hub.store.backend_name(), "postgres");
    let pop = Population::generate(&SynthConfig { persons: 3_000, ..SynthConfig::default() });
    let mut snaps = Vec::new();
    for app in [&sq, &pg] {
        for agency in AGENCIES {
            let mut c = app.client(agency).await;
            let facts: Vec<pb::Fact> = pop.facts(agency).map(|f| fact_out(&f)).collect();
            for chunk in facts.chunks(5_000) {
                c.exchange.push_facts(pb::PushFactsRequest { facts: chunk.to_vec() }).await.unwrap();
            }
        }
        let mut civil = app.client("civil_affairs").await;
        let s = civil
            .coordination
            .create_snapshot(pb::CreateSnapshotRequest { quarter: "2023Q2".into() })
            .await
            .unwrap()
            .into_inner();
        snaps.push(s.section_hashes.into_iter().collect::<std::collections::BTreeMap<String, String>>());
    }
    let (a, b) = (&snaps[0], &snaps[1]);
    let names: Vec<&String> = a.keys().collect();
    assert_eq!(names, b.keys().collect::<Vec<_>>(), "same sections");
    assert!(names.len() >= 9, "{names:?}");
    for name in names {
        if name == "agencies" {
            continue;
        }
        assert_eq!(a[name], b[name], "section {name} differs between SQLite and PostgreSQL");
    }
}

/// Issue 23 item 3: migration 0009 adds CHECKs refusing NaN to the NUMERIC money columns. On a database made with the
/// migrations up to 0007 and holding data, it loses nothing (the reference standards of 0002 and a fund report of
/// 1,326.00 yuan written then are all still there, unchanged), and NaN is refused afterwards, naming the constraint.
#[apply(e2e!)]
#[tokio::test]
async fn migration_0009_keeps_a_0007_databases_data_and_refuses_nan() {
    let url = crate::support::postgres::fresh_database().await;
    let store = doudi::store::Store::open(&url).await.unwrap();
    store.migrate_to(7).await.unwrap();
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO fund_reports (county_code, month, program, version, disbursed_on, amount, recipients, \
         submitted_at, submitted_by) VALUES ('621022', '2023-07', 'TEKUN', 1, '2023-07-10', 1326.00, 3, now(), \
         'civil_affairs')",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let standards = "SELECT COUNT(*)::text || ' ' || SUM(amount)::text || ' ' || \
                     string_agg(item || '=' || amount::text, ',' ORDER BY year, division_code, item) FROM standards";
    let before: String = sqlx::query_scalar(standards).fetch_one(&mut db).await.unwrap();

    store.migrate().await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version").fetch_all(&mut db).await.unwrap();
    // Every migration there is (one file per version in migrations/postgres, named by its version).
    let mut files: Vec<i64> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy()[..4].parse().unwrap())
        .collect();
    files.sort_unstable();
    assert_eq!(versions, files);
    let after: String = sqlx::query_scalar(standards).fetch_one(&mut db).await.unwrap();
    assert_eq!(after, before, "the reference standards are unchanged");
    let amount: String = sqlx::query_scalar("SELECT amount::text FROM fund_reports").fetch_one(&mut db).await.unwrap();
    assert_eq!(amount, "1326.00");

    for (sql, constraint) in [
        ("UPDATE fund_reports SET amount = 'NaN'", "fund_reports_amount_not_nan"),
        ("UPDATE standards SET amount = 'NaN'", "standards_amount_not_nan"),
    ] {
        let e = sqlx::query(sql).execute(&mut db).await.unwrap_err();
        assert!(e.to_string().contains(constraint), "{sql}: {e}");
    }
    store.close().await;
}
