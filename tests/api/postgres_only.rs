//! Tests that only make sense on PostgreSQL (compiled only into `tests/api_pg`): the hub under a lost database
//! connection.

use doudi::grpc::pb;
use sqlx::Connection as _;

use crate::support::{base, id, rural_dibao, with};

/// PostgreSQL: a database connection terminated under a request in flight (a failover, `pg_terminate_backend`) is
/// UNAVAILABLE — the code clients retry — not INTERNAL; nothing is stored, and the next push is served.
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
