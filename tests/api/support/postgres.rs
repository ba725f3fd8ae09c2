//! A fresh PostgreSQL database per test, on the server `DOUDI_TEST_DATABASE_URL` names (the PostgreSQL half of the
//! conformance suite, `tests/api_pg`). Databases are named `doudi_t_<pid>_<n>`; those left by runs whose process
//! is gone are dropped when a run creates its first one (a run still going keeps its databases).

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection as _;
use tokio::sync::OnceCell;

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEPT: OnceCell<()> = OnceCell::const_new();

/// The variable naming the server, read when the tests run (never at build time).
pub const VARIABLE: &str = "DOUDI_TEST_DATABASE_URL";

/// The server's URL from `DOUDI_TEST_DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/postgres`), if it is set
/// and not empty: `tests/api_pg` skips the PostgreSQL half without it.
pub fn server_url_if_set() -> Option<String> {
    std::env::var(VARIABLE).ok().filter(|s| !s.is_empty())
}

/// The server's URL from `DOUDI_TEST_DATABASE_URL`.
pub fn server_url() -> String {
    server_url_if_set().expect("the PostgreSQL half of the suite needs DOUDI_TEST_DATABASE_URL")
}

/// Create an empty database for one test and return its URL.
pub async fn fresh_database() -> String {
    let server = server_url();
    let mut admin = sqlx::PgConnection::connect(&server).await.expect("connect to DOUDI_TEST_DATABASE_URL");
    let pid = std::process::id();
    SWEPT
        .get_or_init(|| async {
            let mine = format!("doudi_t_{pid}_%");
            let old: Vec<String> = sqlx::query_scalar(
                "SELECT datname FROM pg_database WHERE datname LIKE 'doudi\\_t\\_%' AND datname NOT LIKE $1",
            )
            .bind(mine)
            .fetch_all(&mut admin)
            .await
            .unwrap();
            for db in old {
                let pid_alive = db
                    .strip_prefix("doudi_t_")
                    .and_then(|rest| rest.split('_').next())
                    .is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
                if pid_alive {
                    continue;
                }
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")))
                    .execute(&mut admin)
                    .await;
            }
        })
        .await;
    let db = format!("doudi_t_{pid}_{}", COUNTER.fetch_add(1, Ordering::Relaxed));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db}\""))).execute(&mut admin).await.unwrap();
    admin.close().await.unwrap();
    doudi::tools::bench::pg::with_database(&server, &db)
}
