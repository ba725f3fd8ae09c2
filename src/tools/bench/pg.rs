//! P7 and P8 (docs/spec/performance.md), on the PostgreSQL server `--postgres URL` names; each run makes its own
//! database (`doudi_bench_<pid>_<n>`) and drops it afterwards.
//!
//! - **P7**: P1 on PostgreSQL — five agencies stream `n` facts over mTLS into a child hub on PostgreSQL; floor = the
//!   same rows by `COPY` into the same tables ([`crate::store::Store::bench_insert_rows`] on PostgreSQL), in process,
//!   one transaction per batch, on a database of its own. Target ≥ 0.5 of the floor.
//! - **P8**: scale-out — `GetRecipient` at 32 concurrent requests against one replica, then split over two replicas
//!   (one connection each) on the same database, alternating windows; target two ≥ 1.6 × one "when cores allow"
//!   (this machine's core count is in the line).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::Connection as _;

use super::hub::ChildHub;
use super::{BenchArgs, Figure, Output, load, p1, p2};

/// `url` with its database name replaced by `db` (query string kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[after_scheme..].find('/').map(|i| after_scheme + i).unwrap_or(base.len());
    format!("{}/{db}{query}", &base[..host_end])
}

/// A database made for one measurement on `server`; dropped by [`BenchDb::drop_now`].
pub struct BenchDb {
    server: String,
    name: String,
    pub url: String,
}

impl BenchDb {
    pub async fn create(server: &str, tag: &str) -> anyhow::Result<BenchDb> {
        let name = format!("doudi_bench_{}_{tag}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(server).await.with_context(|| format!("connecting to {server}"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
            .execute(&mut admin)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut admin).await?;
        admin.close().await?;
        Ok(BenchDb { url: with_database(server, &name), server: server.to_owned(), name })
    }

    pub async fn drop_now(self) -> anyhow::Result<()> {
        let mut admin = sqlx::PgConnection::connect(&self.server).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)))
            .execute(&mut admin)
            .await?;
        Ok(())
    }
}

pub async fn run(args: &BenchArgs, server: &str, out: &mut Output) -> anyhow::Result<()> {
    let wants = |id: &str| args.only.iter().any(|o| o == id);
    let exe = match &args.hub_exe {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    let n = args.facts.unwrap_or(100_000);
    let pop = load::population_for(n);
    let facts = load::facts(&pop, n);
    let as_of = pop.reference_date().to_string();
    let ids: Arc<Vec<String>> = Arc::new(
        facts
            .iter()
            .filter(|(a, _)| *a == crate::domain::agency::AgencyCode::CIVIL_AFFAIRS)
            .flat_map(|(_, f)| f.iter().map(|f| f.id_number.as_str().to_owned()))
            .collect(),
    );

    let floor = if wants("P7") {
        let db = BenchDb::create(server, "floor").await?;
        eprintln!("bench: P7 floor, {n} facts by COPY into {} …", db.url);
        let t = p1::floor_on(&db.url, &facts, args.batch).await?;
        db.drop_now().await?;
        Some(t)
    } else {
        None
    };

    let db = BenchDb::create(server, "hub").await?;
    let msgs = load::messages(&facts, args.batch);
    drop(facts);
    let url = db.url.clone();
    let exe2 = exe.clone();
    let hubs = tokio::task::spawn_blocking(move || ChildHub::replicas(&exe2, &url, 2)).await??;
    eprintln!(
        "bench: two replicas (pids {}, {}) on {}; five agencies stream {n} facts into the first …",
        hubs[0].pid(),
        hubs[1].pid(),
        db.url
    );
    let s = load::stream(&hubs[0], msgs).await?;
    if s.processed != n as u64 || s.accepted != n as u64 {
        anyhow::bail!("the hub processed {} and accepted {} of {n} facts", s.processed, s.accepted);
    }
    let rate = n as f64 / s.elapsed.as_secs_f64();
    if let Some(floor) = floor {
        let floor_rate = n as f64 / floor.as_secs_f64();
        let ratio = rate / floor_rate;
        Figure::against_floor(
            "P7",
            "StreamFacts ingest, 5 agencies at once over mTLS, hub a child process on PostgreSQL (UNNEST inserts, \
             advisory write lock); floor = the same rows by COPY into the same tables in process, one transaction per \
             batch",
            rate,
            "facts/s",
            floor_rate,
            n,
        )
        .target(serde_json::json!({ "ratio_min": 0.5 }), ratio >= 0.5)
        .with("secs", (s.elapsed.as_secs_f64() * 1000.0).round() / 1000.0)
        .with("floor_secs", (floor.as_secs_f64() * 1000.0).round() / 1000.0)
        .with("batch", args.batch)
        .emit(out)?;
    }

    if wants("P8") {
        let window = Duration::from_secs(args.p2_secs);
        let one_client = vec![hubs[0].client("civil_affairs").await?];
        let two_clients = vec![hubs[0].client("civil_affairs").await?, hubs[1].client("civil_affairs").await?];
        let (mut one, mut two) = (p2::Sample::default(), p2::Sample::default());
        eprintln!("bench: P8, GetRecipient at {} concurrent on one replica, then on two …", p2::CONCURRENCY);
        for _ in 0..2 {
            one.merge(p2::get_recipient(&one_client, ids.clone(), &as_of, window, "benchmark P8").await);
            two.merge(p2::get_recipient(&two_clients, ids.clone(), &as_of, window, "benchmark P8").await);
        }
        let ratio = two.rate() / one.rate();
        Figure::against_floor(
            "P8",
            "GetRecipient over mTLS at 32 concurrent requests split over two hub replicas on one PostgreSQL (each read \
             audited); floor = the same against one replica",
            two.rate(),
            "requests/s",
            one.rate(),
            n,
        )
        .target(serde_json::json!({ "ratio_min": 1.6, "when": "cores allow" }), ratio >= 1.6)
        .with("p99_ms", (two.quantile_ms(0.99) * 1000.0).round() / 1000.0)
        .with("floor_p99_ms", (one.quantile_ms(0.99) * 1000.0).round() / 1000.0)
        .with("errors", one.errors + two.errors)
        .emit(out)?;
    }
    for h in hubs {
        h.stop()?;
    }
    db.drop_now().await?;
    Ok(())
}
