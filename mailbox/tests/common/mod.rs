//! The backend a storage test runs on: SQLite in a temp folder by default, a fresh
//! PostgreSQL database with `RENKEI_TEST_BACKEND=postgres` and `RENKEI_TEST_PG_URL`.
#![allow(dead_code)]

use std::sync::Arc;

use mailbox::store::{self, Store, StoreTarget};

pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub dir: tempfile::TempDir,
    /// Where the store is, for tests that reach the database directly.
    pub target: StoreTarget,
}

pub async fn fresh_store() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let target = match std::env::var("RENKEI_TEST_BACKEND").as_deref() {
        Ok("postgres") => {
            let admin = std::env::var("RENKEI_TEST_PG_URL")
                .expect("RENKEI_TEST_PG_URL must be set for the postgres backend");
            StoreTarget::Postgres(create_pg_database(&admin).await)
        }
        _ => StoreTarget::Sqlite(dir.path().join("renkei.db")),
    };
    let store = store::open(&target).await.unwrap();
    TestStore { store, dir, target }
}

async fn create_pg_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("renkei_store_{}", hex_random());
    let mut conn = sqlx::PgConnection::connect(admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap();
    format!("{base}/{name}")
}

fn hex_random() -> String {
    use rand::Rng;
    format!("{:016x}", rand::thread_rng().r#gen::<u64>())
}
