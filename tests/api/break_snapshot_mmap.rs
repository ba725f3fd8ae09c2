//! Attacks on VerifySnapshot's mapped read of 2026-12-07 (`mapped_read` around the fact look-up, SQLite
//! `PRAGMA mmap_size`): a fact whose content hash is tampered with is still named, and no reader connection goes back
//! to the pool mapped — neither after a verification that ran to the end nor after one dropped half-way (a client
//! that cancels, a deadline).

use std::future::Future;
use std::task::Poll;

use doudi::grpc::convert::fact_out;
use doudi::grpc::pb;
use doudi::synth::{AGENCIES, Population, SynthConfig};
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
async fn reader_mmap_sizes(app: &TestApp) -> Vec<i64> {
    let pool = app.app_hub.store.sqlite_pool().unwrap();
    let mut held = Vec::new();
    for _ in 0..pool.size() {
        held.push(pool.acquire().await.unwrap());
    }
    let mut out = Vec::new();
    for c in &mut held {
        out.push(sqlx::query_scalar::<_, i64>("PRAGMA mmap_size").fetch_one(&mut **c).await.unwrap());
    }
    out
}

/// Run `fut` until it has returned Pending `k` times, then drop it; true when it finished before that.
async fn run_then_drop<F: Future>(fut: F, k: usize) -> bool {
    let mut fut = std::pin::pin!(fut);
    let mut pending = 0;
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(_) => Poll::Ready(true),
        Poll::Pending if pending + 1 >= k => Poll::Ready(false),
        Poll::Pending => {
            pending += 1;
            Poll::Pending
        }
    })
    .await
}

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

    // Cancelled at every await point in turn: no reader connection is left mapped.
    if !crate::ON_POSTGRES {
        assert!(reader_mmap_sizes(&app).await.iter().all(|&m| m == 0), "unmapped after a full verification");
        // The probe sees a connection left mapped (so that a clean result below means something).
        {
            let mut c = app.app_hub.store.sqlite_pool().unwrap().acquire().await.unwrap();
            sqlx::query("PRAGMA mmap_size = 1048576").execute(&mut *c).await.unwrap();
        }
        assert!(reader_mmap_sizes(&app).await.iter().any(|&m| m != 0), "the probe sees a mapped reader");
        {
            let pool = app.app_hub.store.sqlite_pool().unwrap();
            let mut held = Vec::new();
            for _ in 0..pool.size() {
                held.push(pool.acquire().await.unwrap());
            }
            for c in &mut held {
                sqlx::query("PRAGMA mmap_size = 0").execute(&mut **c).await.unwrap();
            }
        }
        let store = app.app_hub.store.clone();
        let mut left_mapped = Vec::new();
        'rounds: for _round in 0..5 {
            for k in 1..200 {
                let finished = run_then_drop(store.verify_snapshot("2023Q2"), k).await;
                // The dropped connection goes back to the pool by a task of its own.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let sizes = reader_mmap_sizes(&app).await;
                if sizes.iter().any(|&m| m != 0) {
                    left_mapped.push(format!("dropped after {k} pendings: mmap_size {sizes:?}"));
                    // Unmap them again for the next round.
                    let pool = app.app_hub.store.sqlite_pool().unwrap();
                    let mut held = Vec::new();
                    for _ in 0..pool.size() {
                        held.push(pool.acquire().await.unwrap());
                    }
                    for c in &mut held {
                        sqlx::query("PRAGMA mmap_size = 0").execute(&mut **c).await.unwrap();
                    }
                }
                if finished {
                    if !left_mapped.is_empty() {
                        break 'rounds;
                    }
                    break;
                }
            }
        }
        assert!(left_mapped.is_empty(), "a cancelled VerifySnapshot left readers mapped:\n{}", left_mapped.join("\n"));
    }

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
    if !crate::ON_POSTGRES {
        assert!(reader_mmap_sizes(&app).await.iter().all(|&m| m == 0), "unmapped after the verifications");
    }
    let _ = &mut lg;
    app.stop().await;
}
