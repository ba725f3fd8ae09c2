//! VerifySnapshot with its mapped read (`map_this_read` around the fact look-up, SQLite `PRAGMA mmap_size`): a fact
//! whose content hash is tampered with is still named, on two verifications in a row. (That no reader goes back to
//! the pool mapped rests on sqlx's `PoolConnection::close_on_drop`: the connection is closed, not returned, however
//! the read ends; a probe of the pool's idle connections from a test could not list them reliably.)

use doudi::grpc::convert::fact_out;
use doudi::grpc::pb;
use doudi::tools::synth::{AGENCIES, Population, SynthConfig};
use macro_rules_attribute::apply;

use crate::support::{TestApp, spawn_app};

async fn load(app: &TestApp, pop: &Population) {
    for agency in AGENCIES {
        let mut c = app.client(agency).await;
        let facts: Vec<pb::Fact> = pop.facts(agency).map(|f| fact_out(&f)).collect();
        for chunk in facts.chunks(5_000) {
            c.exchange.push_facts(pb::PushFactsRequest { facts: chunk.to_vec() }).await.unwrap();
        }
    }
}

/// The `mmap_size` of every reader connection of the SQLite pool (all acquired at once).
#[apply(e2e!)]
#[tokio::test]
async fn break_snapshot_tampered_fact_hash_is_named_and_readers_are_unmapped() {
    let app = spawn_app().await;
    let pop = Population::generate(&SynthConfig { persons: 300, ..SynthConfig::default() });
    load(&app, &pop).await;
    let mut civil = app.client("civil_affairs").await;
    civil.coordination.create_snapshot(pb::CreateSnapshotRequest { quarter: "2023Q2".into() }).await.unwrap();
    let mut lg = app.client("leading_group").await;
    let verify = |mut lg: doudi::client::Clients| async move {
        lg.coordination
            .verify_snapshot(pb::VerifySnapshotRequest { quarter: "2023Q2".into() })
            .await
            .unwrap()
            .into_inner()
    };
    let v = verify(lg.clone()).await;
    assert!(v.valid, "{:?}", v.differences);

    // One fact version a status points at gets another content hash: named as altered.
    let blob = if crate::ON_POSTGRES { "decode(repeat('ab', 32), 'hex')" } else { "randomblob(32)" };
    let sql = format!(
        "UPDATE facts SET content_hash = {blob} WHERE (agency, fact_id, source_version) IN \
         (SELECT agency, fact_id, source_version FROM snapshot_statuses WHERE quarter = '2023Q2' \
         ORDER BY person_key LIMIT 1)"
    );
    let n = if crate::ON_POSTGRES {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(app.app_hub.store.pg_pool().unwrap())
            .await
            .unwrap()
            .rows_affected()
    } else {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(app.app_hub.store.sqlite_pool().unwrap())
            .await
            .unwrap()
            .rows_affected()
    };
    assert_eq!(n, 1);
    for _ in 0..2 {
        let v = verify(lg.clone()).await;
        assert!(!v.valid);
        assert!(
            v.differences.iter().any(|d| d.contains("missing or altered since the snapshot")),
            "{:?}",
            v.differences
        );
    }
    let _ = &mut lg;
    app.stop().await;
}
