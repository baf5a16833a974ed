//! Direct access to a test's database (SQLite in the data folder, or the
//! test's PostgreSQL database), for checks and deliberate damage.

use super::Network;

pub enum Db {
    Pg(sqlx::PgPool),
    Lite(sqlx::SqlitePool),
}

impl Db {
    pub async fn open(net: &Network) -> Self {
        match &net.database_url {
            Some(url) => Self::Pg(sqlx::PgPool::connect(url).await.unwrap()),
            None => Self::Lite(
                sqlx::SqlitePool::connect(&format!(
                    "sqlite://{}",
                    net.data_dir().join("renkei.db").display()
                ))
                .await
                .unwrap(),
            ),
        }
    }

    pub async fn exec(&self, sql: &str) -> u64 {
        match self {
            Self::Pg(p) => sqlx::query(sql).execute(p).await.unwrap().rows_affected(),
            Self::Lite(p) => sqlx::query(sql).execute(p).await.unwrap().rows_affected(),
        }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        match self {
            Self::Pg(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
            Self::Lite(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        }
    }

    pub async fn strings(&self, sql: &str) -> Vec<Option<String>> {
        match self {
            Self::Pg(p) => sqlx::query_scalar(sql).fetch_all(p).await.unwrap(),
            Self::Lite(p) => sqlx::query_scalar(sql).fetch_all(p).await.unwrap(),
        }
    }

    /// One binary column of one row.
    pub async fn bytes(&self, sql: &str) -> Vec<u8> {
        match self {
            Self::Pg(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
            Self::Lite(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        }
    }

    /// Replaces an envelope's sealed body (as a restored or doctored backup would).
    pub async fn set_body(&self, id: &str, body: &[u8]) {
        let sql = "UPDATE envelopes SET body = $1 WHERE id = $2";
        let n = match self {
            Self::Pg(p) => sqlx::query(sql)
                .bind(body)
                .bind(id)
                .execute(p)
                .await
                .unwrap()
                .rows_affected(),
            Self::Lite(p) => sqlx::query(sql)
                .bind(body)
                .bind(id)
                .execute(p)
                .await
                .unwrap()
                .rows_affected(),
        };
        assert_eq!(n, 1);
    }
}
